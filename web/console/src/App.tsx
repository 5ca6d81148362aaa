// The console's shell: providers, the route table and the layout. Every
// view is a route-level lazy chunk; only this shell, the session and the
// live store are in the initial JavaScript.
import { lazy, Suspense, useState, type ReactNode } from "react";
import { BrowserRouter, Navigate, NavLink, Route, Routes } from "react-router";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { AuthProvider, useAuth } from "./auth";
import { LiveProvider, useConnection, useUnread } from "./live/hooks";
import { SignIn } from "./SignIn";

const Orders = lazy(() => import("./views/Orders"));
const OrderDetail = lazy(() => import("./views/OrderDetail"));
const Notifications = lazy(() => import("./views/Notifications"));
const Ops = lazy(() => import("./views/Ops"));
const Analytics = lazy(() => import("./views/Analytics"));
const Catalog = lazy(() => import("./views/Catalog"));

export function App() {
  const [client] = useState(() => new QueryClient({ defaultOptions: { queries: { staleTime: 10_000, retry: 1 } } }));
  return (
    <QueryClientProvider client={client}>
      <AuthProvider>
        <BrowserRouter>
          <Shell />
        </BrowserRouter>
      </AuthProvider>
    </QueryClientProvider>
  );
}

function Shell() {
  const { session, signOut } = useAuth();
  if (!session) return <SignIn />;
  const ops = session.role === "ops";
  return (
    <LiveProvider session={session}>
      <header className="top">
        <strong className="brand">Tradewind</strong>
        <nav>
          <NavLink to="/orders">My orders</NavLink>
          <NavLink to="/notifications">
            Notifications <UnreadBadge />
          </NavLink>
          <NavLink to="/catalog">Catalog</NavLink>
          {ops && <NavLink to="/ops">Live operations</NavLink>}
          {ops && <NavLink to="/analytics">Analytics</NavLink>}
        </nav>
        <span className="who">
          {session.user} ({session.role}) <Connection />{" "}
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </span>
      </header>
      <main>
        <Suspense fallback={<Skeleton />}>
          <Routes>
            <Route path="/" element={<Navigate to={ops ? "/ops" : "/orders"} replace />} />
            <Route path="/orders" element={<Orders />} />
            <Route path="/orders/:id" element={<OrderDetail />} />
            <Route path="/notifications" element={<Notifications />} />
            <Route path="/catalog" element={<Catalog />} />
            <Route path="/ops" element={<OpsOnly ops={ops}><Ops /></OpsOnly>} />
            <Route path="/analytics" element={<OpsOnly ops={ops}><Analytics /></OpsOnly>} />
            <Route path="*" element={<p>No such page.</p>} />
          </Routes>
        </Suspense>
      </main>
    </LiveProvider>
  );
}

function OpsOnly({ ops, children }: { ops: boolean; children: ReactNode }) {
  return ops ? children : <p className="error">This view needs an operator token (tradewind token --user NAME --role ops).</p>;
}

function UnreadBadge() {
  const n = useUnread();
  return n > 0 ? <span className="badge" data-testid="unread">{n}</span> : null;
}

function Connection() {
  const s = useConnection();
  return (
    <span className="conn" data-state={s} id="conn">
      {s}
    </span>
  );
}

/** The placeholder shown while a view's chunk loads. */
export function Skeleton() {
  return (
    <div className="skeleton" aria-busy="true">
      <div />
      <div />
      <div />
    </div>
  );
}
