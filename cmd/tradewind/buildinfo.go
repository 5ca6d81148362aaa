package main

import "github.com/tradewind/tradewind/internal/app"

// The version set with -ldflags is reported by discovery (NATS micro) and
// the tradewind_build_info metric.
func init() { app.Version = version }
