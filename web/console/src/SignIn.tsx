import { useState } from "react";
import { useAuth } from "./auth";

/** Asks for an access token: `tradewind token --user c-1` prints one. */
export function SignIn() {
  const { signIn } = useAuth();
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  return (
    <main className="signin">
      <h1>Tradewind console</h1>
      <p>
        Paste an access token: <code>tradewind token --user c-1</code> for a customer,{" "}
        <code>tradewind token --user ops-1 --role ops</code> for an operator (or open this page with{" "}
        <code>#token=…</code>). <code>make run</code> prints one.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setError(signIn(token));
        }}
      >
        <textarea id="token" rows={4} value={token} onChange={(e) => setToken(e.target.value)} placeholder="eyJ…" />
        <button type="submit">Sign in</button>
        {error && <p className="error">{error}</p>}
      </form>
    </main>
  );
}
