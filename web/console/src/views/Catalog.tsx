// Catalog: autocomplete on product names (debounced, keyboard navigable:
// ↑ ↓ Enter Escape), ranked full-text search, and a product's page
// (?sku=) with its images and, for operators, an upload form.
import { useDeferredValue, useEffect, useId, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { get, money, uploadImage, type Product, type ProductImage } from "../api";
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
  const [params] = useSearchParams();
  const sku = params.get("sku");
  return sku ? <ProductPage sku={sku} /> : <Search />;
}

function Search() {
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
            <Link to={`/catalog?sku=${encodeURIComponent(p.sku)}`}>
              <strong>{p.name}</strong>
            </Link>{" "}
            <small>{p.sku}</small> · {p.category_name} · {money(p.price, p.currency)}
            {p.description && <div className="meta">{p.description}</div>}
          </li>
        ))}
      </ul>
      {results.data?.products.length === 0 && <p>No product matches “{deferred}”.</p>}
    </section>
  );
}

/** The sizes attribute of a product image: full width on narrow screens. */
const imageSizes = "(max-width: 40rem) 100vw, 20rem";

/**
 * An image at the width the layout needs: the browser picks from srcset
 * (the thumbnails and the original, by width), loads it only near the
 * viewport and decodes it off the main thread. width/height reserve its
 * box, so nothing shifts when it arrives.
 */
export function ProductPicture({ image, alt }: { image: ProductImage; alt: string }) {
  const srcSet = [...image.thumbnails.map((t) => `${t.url} ${t.width}w`), `${image.url} ${image.width}w`].join(", ");
  const src = image.thumbnails[0]?.url ?? image.url;
  return (
    <img
      src={src}
      srcSet={srcSet}
      sizes={imageSizes}
      width={image.width}
      height={image.height}
      loading="lazy"
      decoding="async"
      alt={alt}
      data-hash={image.hash}
    />
  );
}

function ProductPage({ sku }: { sku: string }) {
  const session = useSession();
  const [after, setAfter] = useState("");
  const product = useQuery({
    queryKey: ["product", sku, after],
    queryFn: ({ signal }) =>
      get<Product>(`/v1/products/${encodeURIComponent(sku)}${after ? `?after=${encodeURIComponent(after)}` : ""}`, session.token, signal),
    placeholderData: keepPreviousData,
  });
  const p = product.data;
  return (
    <section id="product" data-sku={sku}>
      <p>
        <Link to="/catalog">← Catalog</Link>
      </p>
      {product.error && <p className="error">{product.error.message}</p>}
      {p && (
        <>
          <h1>{p.name}</h1>
          <p>
            <small>{p.sku}</small> · {p.category_name} · {money(p.price, p.currency)}
          </p>
          {p.description && <p className="meta">{p.description}</p>}
          <ul className="product-images" id="product-images">
            {(p.images ?? []).map((im) => (
              <li key={im.hash}>
                <ProductPicture image={im} alt={p.name} />
              </li>
            ))}
          </ul>
          {(p.images ?? []).length === 0 && <p>No image yet.</p>}
        </>
      )}
      {session.role === "ops" && <UploadImage sku={sku} onAccepted={setAfter} />}
    </section>
  );
}

/** The operator's upload: one file; the gateway judges its type. */
function UploadImage({ sku, onAccepted }: { sku: string; onAccepted: (position: string) => void }) {
  const session = useSession();
  const client = useQueryClient();
  const [file, setFile] = useState<File | null>(null);
  const upload = useMutation({
    mutationFn: (f: File) => uploadImage(session.token, sku, f, f.name),
    onSuccess: (a) => {
      // Read the product again once its read model holds the image.
      onAccepted(a.position);
      void client.invalidateQueries({ queryKey: ["product", sku] });
    },
  });
  return (
    <form
      className="upload"
      onSubmit={(e) => {
        e.preventDefault();
        if (file) upload.mutate(file);
      }}
    >
      <label>
        Add an image (JPEG, PNG or WebP){" "}
        <input id="image-file" type="file" accept="image/jpeg,image/png,image/webp" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
      </label>{" "}
      <button type="submit" id="upload-image" disabled={!file || upload.isPending}>
        Upload
      </button>
      {upload.error && (
        <p className="error" id="upload-error" role="alert">
          {upload.error.message}
        </p>
      )}
      {upload.isSuccess && <p id="upload-done">Uploaded.</p>}
    </form>
  );
}
