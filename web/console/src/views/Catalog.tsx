// Catalog: autocomplete on product names (debounced, keyboard navigable:
// ↑ ↓ Enter Escape) and ranked full-text search.
import { useDeferredValue, useEffect, useId, useState } from "react";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { get, money, type Product } from "../api";
import { useSession } from "../auth";

/** value, once it has not changed for ms. */
export function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

export default function Catalog() {
  const session = useSession();
  const [text, setText] = useState("");
  const [query, setQuery] = useState("");
  const [active, setActive] = useState(-1);
  const [open, setOpen] = useState(false);
  const prefix = useDebounced(text.trim(), 150);
  const listId = useId();
  const suggest = useQuery({
    queryKey: ["autocomplete", prefix],
    queryFn: ({ signal }) => get<{ products: Product[] }>(`/v1/products/autocomplete?limit=8&prefix=${encodeURIComponent(prefix)}`, session.token, signal),
    enabled: prefix.length > 0,
    placeholderData: keepPreviousData,
  });
  const deferred = useDeferredValue(query);
  const results = useQuery({
    queryKey: ["search", deferred],
    queryFn: ({ signal }) => get<{ products: Product[] }>(`/v1/products/search?limit=50&q=${encodeURIComponent(deferred)}`, session.token, signal),
    enabled: deferred.length > 0,
  });
  const options = open && prefix ? (suggest.data?.products ?? []) : [];
  const choose = (s: string) => {
    setText(s);
    setQuery(s);
    setOpen(false);
    setActive(-1);
  };
  return (
    <section>
      <h1>Catalog</h1>
      <form
        className="search"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          choose(active >= 0 && options[active] ? options[active].name : text);
        }}
      >
        <input
          id="catalog-search"
          role="combobox"
          aria-expanded={options.length > 0}
          aria-controls={listId}
          aria-activedescendant={active >= 0 ? `${listId}-${active}` : undefined}
          autoComplete="off"
          placeholder="Search products"
          value={text}
          onChange={(e) => {
            setText(e.target.value);
            setOpen(true);
            setActive(-1);
          }}
          onKeyDown={(e) => {
            if (e.key === "ArrowDown") {
              e.preventDefault();
              setActive((a) => Math.min(a + 1, options.length - 1));
            } else if (e.key === "ArrowUp") {
              e.preventDefault();
              setActive((a) => Math.max(a - 1, -1));
            } else if (e.key === "Escape") {
              setOpen(false);
            }
          }}
        />
        <button type="submit">Search</button>
        {options.length > 0 && (
          <ul id={listId} role="listbox" className="suggestions">
            {options.map((p, i) => (
              <li
                key={p.sku}
                id={`${listId}-${i}`}
                role="option"
                aria-selected={i === active}
                onMouseDown={(e) => {
                  e.preventDefault();
                  choose(p.name);
                }}
              >
                {p.name} <small>{p.category_name}</small>
              </li>
            ))}
          </ul>
        )}
      </form>
      {results.error && <p className="error">{results.error.message}</p>}
      <ul className="products" id="products">
        {results.data?.products.map((p) => (
          <li key={p.sku}>
            <strong>{p.name}</strong> <small>{p.sku}</small> · {p.category_name} · {money(p.price, p.currency)}
            {p.description && <div className="meta">{p.description}</div>}
          </li>
        ))}
      </ul>
      {results.data?.products.length === 0 && <p>No product matches “{deferred}”.</p>}
    </section>
  );
}
