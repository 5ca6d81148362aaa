package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/natsauth"
)

// newPublishCmd builds the `publish` subcommand.
func newPublishCmd() *cobra.Command {
	var asJSON bool
	var natsURL, dataDir, data, file, id, subject, source string
	var structured bool
	cmd := &cobra.Command{
		Use:   "publish TYPE",
		Short: "Publish a command or event (a small producer for manual tours)",
		Long: `Publish one CloudEvent to a running Tradewind and wait for JetStream's ack.

TYPE is a full type (com.tradewind.orders.place.v1) or short (orders.place,
newest version). The data comes from --data or --file (- for stdin) and is
validated against the type's schema before it is sent.

It is sent in binary content mode (attributes as ce- headers), as Tradewind
publishes; --structured sends the JSON event format instead, as a producer
on version 1.0.1 of the CloudEvents NATS binding does (consumers accept both).`,
		Example: `  tradewind publish orders.place --data '{"customer_id":"c-1","currency":"EUR","lines":[{"sku":"SKU-1","quantity":2,"unit_price":1250}]}'
  tradewind publish orders.place --file order.json --id 0190f1d2-...   # retry with the same id: deduplicated`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ceType, err := resolveType(args[0])
			if err != nil {
				return err
			}
			raw, err := readData(data, file)
			if err != nil {
				return err
			}
			var payload json.RawMessage
			if err := json.Unmarshal(raw, &payload); err != nil {
				return fmt.Errorf("data is not JSON: %w", err)
			}
			// An order placed without an order_id gets one here, as the
			// gateway gives one, so it can be printed and looked up.
			orderID := ""
			if spec := events.MustLookup(ceType); spec.Context == "orders" && spec.Name == "place" {
				var doc map[string]any
				if json.Unmarshal(raw, &doc) == nil {
					if id, ok := doc["order_id"].(string); ok && id != "" {
						orderID = id
					} else if _, present := doc["order_id"]; !present {
						orderID = uuid.Must(uuid.NewV7()).String()
						doc["order_id"] = orderID
						if payload, err = json.Marshal(doc); err != nil {
							return err
						}
					}
				}
				if subject == "" {
					subject = orderID
				}
			}
			opts := []events.Option{events.WithSource(source)}
			if id != "" {
				opts = append(opts, events.WithID(id))
			}
			e, err := events.New(ceType, subject, payload, opts...)
			if err != nil {
				return err
			}
			url, err := resolveNATS(natsURL, dataDir)
			if err != nil {
				return err
			}
			nc, err := broker.Connect(url, "tradewind-publish")
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return err
			}
			publish := broker.Publish
			if structured {
				publish = broker.PublishStructured
			}
			ack, err := publish(cmd.Context(), js, e)
			if err != nil {
				return err
			}
			dup := ""
			if ack.Duplicate {
				dup = " (duplicate: the broker already had this id)"
			}
			pos := fmt.Sprintf("%s:%d", ack.Stream, ack.Sequence)
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"id": orderID, "command_id": e.ID(), "type": ceType,
					"position": pos, "duplicate": ack.Duplicate})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "published %s id=%s", ceType, e.ID())
			if orderID != "" {
				fmt.Fprintf(cmd.OutOrStdout(), " order_id=%s", orderID)
			}
			fmt.Fprintf(cmd.OutOrStdout(), " position=%s%s\n", pos, dup)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&natsURL, "nats-url", os.Getenv("NATS_URL"), "NATS URL (env NATS_URL; default: the running system's state file)")
	f.StringVar(&dataDir, "data-dir", envOr("TRADEWIND_DATA_DIR", "./.tradewind"), "data directory of the running system (env TRADEWIND_DATA_DIR)")
	f.StringVar(&data, "data", "", "JSON data")
	f.StringVar(&file, "file", "", "file with the JSON data (- for stdin)")
	f.StringVar(&id, "id", "", "event id (reuse it to retry safely; default a new UUIDv7)")
	f.StringVar(&subject, "subject", "", "CloudEvent subject (aggregate id)")
	f.StringVar(&source, "source", "/tradewind/cli", "CloudEvent source")
	f.BoolVar(&asJSON, "json", false, `print {"id", "command_id", "type", "position", "duplicate"} as the gateway's 202 does (id: the order id of orders.place)`)
	f.BoolVar(&structured, "structured", false, "send in structured content mode (the JSON event format) instead of binary mode")
	return cmd
}

// resolveType accepts a full CloudEvent type or context.name (newest version).
func resolveType(s string) (string, error) {
	if _, ok := events.Lookup(s); ok {
		return s, nil
	}
	best := events.Spec{}
	for _, spec := range events.All() {
		if spec.Context+"."+spec.Name == strings.TrimPrefix(s, events.TypePrefix) && spec.Version > best.Version {
			best = spec
		}
	}
	if best.Version == 0 {
		var known []string
		for _, spec := range events.All() {
			known = append(known, spec.Context+"."+spec.Name)
		}
		return "", fmt.Errorf("unknown type %q (known: %s)", s, strings.Join(known, ", "))
	}
	return best.Type(), nil
}

func readData(data, file string) ([]byte, error) {
	switch {
	case data != "" && file != "":
		return nil, errors.New("give --data or --file, not both")
	case data != "":
		return []byte(data), nil
	case file == "-":
		return io.ReadAll(os.Stdin)
	case file != "":
		return os.ReadFile(file)
	}
	return nil, errors.New("no data: give --data or --file")
}

// resolveNATS finds the NATS URL: the flag/env, else the running system's
// state file.
func resolveNATS(natsURL, dataDir string) (string, error) {
	if natsURL != "" {
		return withNATSCredentials(natsURL)
	}
	st, err := app.ReadState(dataDir)
	if err != nil || st.NATSURL == "" {
		return "", config.ErrNoSystem
	}
	return st.NATSURL, nil
}

// withNATSCredentials adds the password of TRADEWIND_NATS_USER (default
// ops) from the TRADEWIND_NATS_CREDENTIALS directory to a NATS URL that has
// no user, so the CLI runs as an operator next to a deployment
// (docs/security.md, NATS accounts).
func withNATSCredentials(natsURL string) (string, error) {
	dir := os.Getenv("TRADEWIND_NATS_CREDENTIALS")
	if dir == "" {
		return natsURL, nil
	}
	user := envOr("TRADEWIND_NATS_USER", natsauth.UserOps)
	pw, err := natsauth.ReadPassword(dir, user)
	if err != nil {
		return "", fmt.Errorf("TRADEWIND_NATS_CREDENTIALS: %w (the CLI connects as %s; set TRADEWIND_NATS_USER to use another user)", err, user)
	}
	return natsauth.WithUserInfo(natsURL, user, pw)
}
