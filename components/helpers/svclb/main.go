// Command svclb is the container of k3ha's service load balancer: one runs
// per port of a LoadBalancer Service on every node that serves it, behind a
// hostPort, and forwards what arrives to the Service (its cluster IPs, or
// the node's own NodePort under externalTrafficPolicy Local). It works in
// user space, so the image needs no iptables.
//
// Settings come from the environment, as K3s's klipper-lb takes them:
// SRC_PORT (listen), DEST_PROTO (TCP or UDP), DEST_PORT, DEST_IPS
// (comma-separated, tried in order), SRC_RANGES (allowed client CIDRs).
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	cfg, err := fromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "svclb:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log.Printf("svclb: %s :%d -> %v port %d, from %v", cfg.proto, cfg.srcPort, cfg.destIPs, cfg.destPort, cfg.srcRanges)
	if err := serve(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "svclb:", err)
		os.Exit(1)
	}
}
