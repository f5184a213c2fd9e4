package podnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// RouteProtocol marks the routes k3ha owns (the rtm_protocol field, see
// /etc/iproute2/rt_protos). Only routes carrying it are ever replaced or
// deleted, and `ip route show proto 107` lists them. 107 is unassigned in
// iproute2's list and not the default of the CNI projects we know
// (Calico uses 80, routing daemons the named ones).
const RouteProtocol netlink.RouteProtocol = 107

// How often routes are compared with the Nodes even without a change: a
// link going down makes the kernel drop routes through it, and nothing
// tells us.
var (
	resyncInterval = 30 * time.Second
	retryInterval  = 5 * time.Second
)

// hostRoute sends the pods of Dst to the node at Gw.
type hostRoute struct {
	Dst *net.IPNet
	Gw  net.IP
}

// nodeRoute is a wanted route and the node it leads to.
type nodeRoute struct {
	hostRoute
	Node string
}

// desiredRoutes returns the routes to the pods of every other node, keyed
// by destination, and why nodes that should have one cannot (by node name).
// Nodes without a pod CIDR or InternalIP yet are skipped silently: they
// are still starting.
func desiredRoutes(self string, selfIP net.IP, cluster *net.IPNet, nodes []*corev1.Node) (map[string]nodeRoute, map[string]string) {
	sorted := slices.Clone(nodes)
	// Sorted, so that when two nodes claim one CIDR the same one wins
	// every time.
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })

	want := map[string]nodeRoute{}
	problems := map[string]string{}
	claimed := map[string]string{} // pod CIDR -> node
	for _, n := range sorted {
		if n.Name == self {
			if c, err := nodePodCIDR(n); err == nil && c != nil {
				claimed[c.String()] = self
			}
		}
	}
	for _, n := range sorted {
		if n.Name == self {
			continue
		}
		cidr, err := nodePodCIDR(n)
		if err != nil {
			problems[n.Name] = err.Error()
			continue
		}
		ip := internalIPv4(n)
		if cidr == nil || ip == nil {
			continue
		}
		key := cidr.String()
		switch {
		case !within(cidr, cluster):
			problems[n.Name] = fmt.Sprintf("pod CIDR %s is outside the cluster CIDR %s", cidr, cluster)
		case ip.Equal(selfIP):
			problems[n.Name] = fmt.Sprintf("its InternalIP %s is this node's IP", ip)
		case claimed[key] != "":
			problems[n.Name] = fmt.Sprintf("pod CIDR %s is also node %s's", cidr, claimed[key])
		default:
			claimed[key] = n.Name
			want[key] = nodeRoute{hostRoute{Dst: cidr, Gw: ip}, n.Name}
		}
	}
	return want, problems
}

// diffRoutes compares the wanted routes with ours in the kernel: routes to
// (re)place, new or with a changed gateway, and routes to delete, whose
// node is gone or has another CIDR now.
func diffRoutes(want map[string]nodeRoute, have []hostRoute) (replace []nodeRoute, remove []hostRoute) {
	current := map[string]hostRoute{}
	for _, h := range have {
		k := h.Dst.String()
		if w, ok := want[k]; ok && w.Gw.Equal(h.Gw) {
			current[k] = h
			continue
		}
		if _, ok := want[k]; !ok {
			remove = append(remove, h)
		}
	}
	for k, w := range want {
		if _, ok := current[k]; !ok {
			replace = append(replace, w)
		}
	}
	sort.Slice(replace, func(i, j int) bool { return replace[i].Node < replace[j].Node })
	sort.Slice(remove, func(i, j int) bool { return remove[i].Dst.String() < remove[j].Dst.String() })
	return replace, remove
}

// Routes keeps a route to the pods of every other Node through that node's
// InternalIP, until ctx ends. It returns nil then, and an error only when
// it cannot start. Routes stay in place when it returns: pods keep talking
// while k3ha restarts, and the next run removes whatever went stale.
func Routes(ctx context.Context, cfg Config, client kubernetes.Interface) error {
	cluster, err := clusterCIDRv4(cfg.ClusterCIDR)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	nodes := factory.Core().V1().Nodes()
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default: // a sync is pending already and will see this change
		}
	}
	// Node status updates come often; only CIDRs and addresses matter.
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(o, n any) { routeInputsChanged(o, n, poke) },
		DeleteFunc: func(any) { poke() },
	}); err != nil {
		return fmt.Errorf("node informer: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced) {
		return nil
	}

	r := &reconciler{self: cfg.NodeName, selfIP: cfg.NodeIP, cluster: cluster, warned: map[string]string{}}
	resync := time.NewTicker(resyncInterval)
	defer resync.Stop()
	for {
		var retry <-chan time.Time
		list, err := nodes.Lister().List(labels.Everything())
		if err == nil {
			err = r.sync(list)
		}
		if err != nil {
			slog.Error("pod routes out of sync, retrying", "err", err, "in", retryInterval)
			retry = time.After(retryInterval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-resync.C:
		case <-retry:
		}
	}
}

func routeInputsChanged(o, n any, poke func()) {
	on, ok1 := o.(*corev1.Node)
	nn, ok2 := n.(*corev1.Node)
	if !ok1 || !ok2 || on.Spec.PodCIDR != nn.Spec.PodCIDR || !slices.Equal(on.Spec.PodCIDRs, nn.Spec.PodCIDRs) ||
		!slices.Equal(on.Status.Addresses, nn.Status.Addresses) {
		poke()
	}
}

// reconciler applies desiredRoutes to the kernel's main table.
type reconciler struct {
	self    string
	selfIP  net.IP
	cluster *net.IPNet
	warned  map[string]string // node -> the problem last warned about
}

func (r *reconciler) sync(nodes []*corev1.Node) error {
	want, problems := desiredRoutes(r.self, r.selfIP, r.cluster, nodes)
	routes, err := mainRoutes()
	if err != nil {
		return err
	}
	var have []hostRoute
	foreign := map[string]netlink.Route{}
	for _, rt := range routes {
		switch {
		case rt.Dst == nil:
		case rt.Protocol == RouteProtocol:
			have = append(have, hostRoute{Dst: rt.Dst, Gw: rt.Gw})
		default:
			foreign[rt.Dst.String()] = rt
		}
	}
	for k, w := range want {
		if f, ok := foreign[k]; ok {
			// Someone else routes this CIDR (an admin, another CNI); not
			// ours to overwrite.
			problems[w.Node] = fmt.Sprintf("a route to %s not made by k3ha exists (gateway %v, protocol %s)", k, f.Gw, f.Protocol)
			delete(want, k)
		} else if why := notDirect(w.Gw); why != "" {
			problems[w.Node] = why
			delete(want, k)
		}
	}
	r.report(problems)

	replace, remove := diffRoutes(want, have)
	var errs []error
	for _, h := range remove {
		rt := &netlink.Route{Dst: h.Dst, Gw: h.Gw, Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
		if err := netlink.RouteDel(rt); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s via %s: %w", h.Dst, h.Gw, err))
			continue
		}
		slog.Info("removed pod route", "pod-cidr", h.Dst.String(), "via", h.Gw.String())
	}
	for _, w := range replace {
		rt := &netlink.Route{Dst: w.Dst, Gw: w.Gw, Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
		if err := netlink.RouteReplace(rt); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %s (node %s): %w", w.Dst, w.Gw, w.Node, err))
			continue
		}
		slog.Info("pod route", "node", w.Node, "pod-cidr", w.Dst.String(), "via", w.Gw.String())
	}
	return errors.Join(errs...)
}

// report warns once per node and problem; a node that recovers and fails
// again is warned about again.
func (r *reconciler) report(problems map[string]string) {
	for node, p := range problems {
		if r.warned[node] != p {
			slog.Warn("no route to a node's pods", "node", node, "reason", p)
			r.warned[node] = p
		}
	}
	for node := range r.warned {
		if _, ok := problems[node]; !ok {
			delete(r.warned, node)
		}
	}
}

// mainRoutes lists the IPv4 routes of the main table. A dump that races
// with a route change comes back incomplete; it is retried.
func mainRoutes() ([]netlink.Route, error) {
	var err error
	for range 3 {
		var routes []netlink.Route
		routes, err = netlink.RouteListFiltered(netlink.FAMILY_V4,
			&netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err == nil {
			return routes, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return nil, fmt.Errorf("list routes: %w", err)
}

// notDirect says why gw cannot be a host route's next hop, "" if it can:
// it must be on a directly connected network, since the route names no
// device and no further gateway.
func notDirect(gw net.IP) string {
	routes, err := netlink.RouteGet(gw)
	if err != nil {
		return fmt.Sprintf("its InternalIP %s is unreachable (%v); host routes need all nodes on one L2 network", gw, err)
	}
	if len(routes) > 0 && routes[0].Gw != nil {
		return fmt.Sprintf("its InternalIP %s is behind gateway %s, not on this node's L2 network; host routes need one L2 network (VXLAN is future work)",
			gw, routes[0].Gw)
	}
	return ""
}
