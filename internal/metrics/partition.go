package metrics

import "github.com/prometheus/client_golang/prometheus"

// Partition lease series (internal/lease), labelled by group (the role).
var (
	PartitionsHeld = factory.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "partition", Name: "held",
		Help: "Partitions whose lease this process holds and whose consumers it runs.",
	}, []string{"group"})
	PartitionLeaseChanges = factory.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "partition", Name: "lease_changes_total",
		Help: "Partition leases taken, lost (not renewed in time) and released (fair share, stop).",
	}, []string{"group", "change"})
)

// SetPartitionsHeld fits lease.Config.Observe.
func SetPartitionsHeld(group string, held int) {
	PartitionsHeld.WithLabelValues(group).Set(float64(held))
}

// PartitionLeaseChanged fits lease.Config.Changed.
func PartitionLeaseChanged(group, change string) {
	PartitionLeaseChanges.WithLabelValues(group, change).Inc()
}
