// The session: the access token (kept in localStorage; a #token=… in the
// address is taken once and removed), and who it says the user is. The
// context value is memoised: it changes only when the token does, so a
// live feed never re-renders through it.
import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from "react";

export interface Session {
  token: string;
  /** The token's subject: the customer id (or the operator's name). */
  user: string;
  role: "customer" | "ops";
  /** Seconds since the epoch. */
  expiresAt: number;
}

export interface Auth {
  session: Session | null;
  signIn: (token: string) => string | null;
  signOut: () => void;
}

const storageKey = "tradewind.token";

/** Decodes (without verifying: the server does) a JWT's claims. */
export function parseToken(token: string): Session | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const c = JSON.parse(json) as { sub?: string; role?: string; exp?: number };
    if (!c.sub) return null;
    return { token, user: c.sub, role: c.role === "ops" ? "ops" : "customer", expiresAt: c.exp ?? 0 };
  } catch {
    return null;
  }
}

function initialToken(): string {
  if (typeof location !== "undefined" && location.hash.includes("token=")) {
    const t = new URLSearchParams(location.hash.slice(1)).get("token");
    if (t) {
      localStorage.setItem(storageKey, t);
      history.replaceState(null, "", location.pathname + location.search); // keep it out of the address bar
      return t;
    }
  }
  return typeof localStorage === "undefined" ? "" : (localStorage.getItem(storageKey) ?? "");
}

const AuthContext = createContext<Auth | null>(null);

export function AuthProvider({ children, token }: { children: ReactNode; token?: string }) {
  const [session, setSession] = useState<Session | null>(() => parseToken(token ?? initialToken()));
  const signIn = useCallback((t: string) => {
    const s = parseToken(t.trim());
    if (!s) return "not a token: paste the output of `tradewind token --user c-1`";
    localStorage.setItem(storageKey, s.token);
    setSession(s);
    return null;
  }, []);
  const signOut = useCallback(() => {
    localStorage.removeItem(storageKey);
    setSession(null);
  }, []);
  const value = useMemo(() => ({ session, signIn, signOut }), [session, signIn, signOut]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const a = useContext(AuthContext);
  if (!a) throw new Error("useAuth outside AuthProvider");
  return a;
}

/** The session; only under a route that requires one. */
export function useSession(): Session {
  const s = useAuth().session;
  if (!s) throw new Error("no session");
  return s;
}
