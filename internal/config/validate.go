package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/util/validation"
)

// PackagedComponents are deployed from the manifests directory unless
// --disable names them (K3s names).
var PackagedComponents = []string{"coredns", "local-storage", "metrics-server", "servicelb", "traefik"}

// RequiredManifests are deployed like the packaged components but cannot
// be disabled: k3ha's own parts need them.
var RequiredManifests = []string{"rolebindings"}

// KnownComponents are what --disable accepts: the packaged components and
// K3s's "runtimes" (its RuntimeClasses, which k3ha does not ship).
var KnownComponents = append(slices.Clone(PackagedComponents), "runtimes")

func joinKnown() string { return strings.Join(KnownComponents, ", ") }

// Validate checks every value on its own and against the others; the error
// lists each wrong flag with what to do about it.
func (s *Server) Validate() error {
	var errs []error
	bad := func(flag, format string, a ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, a...)))
	}

	if s.DataDir == "" {
		bad("data-dir", "must not be empty")
	} else if abs, err := filepath.Abs(s.DataDir); err == nil {
		s.DataDir = abs
	}
	if s.HTTPSPort < 1 || s.HTTPSPort > 65535 {
		bad("https-listen-port", "%d is not a TCP port (1-65535)", s.HTTPSPort)
	}
	if s.Token != "" && s.TokenFile != "" {
		bad("token-file", "give either --token or --token-file, not both")
	}
	if s.AgentToken != "" && s.AgentTokenFile != "" {
		bad("agent-token-file", "give either --agent-token or --agent-token-file, not both")
	}
	for flag, v := range map[string]string{"bind-address": s.BindAddress, "advertise-address": s.AdvertiseAddress, "node-ip": s.NodeIP} {
		if v != "" && net.ParseIP(v) == nil {
			bad(flag, "%q is not an IP address", v)
		}
	}
	if err := checkFlannelBackend(s.FlannelBackend); err != nil {
		bad("flannel-backend", "%v", err)
	}
	if s.AdvertiseAddress != "" && net.ParseIP(s.AdvertiseAddress).IsLoopback() {
		bad("advertise-address", "%s is a loopback address; other servers and agents could not reach it", s.AdvertiseAddress)
	}
	if s.NodeName != "" {
		if msgs := validation.IsDNS1123Subdomain(s.NodeName); len(msgs) > 0 {
			bad("node-name", "%q is not a valid node name: %s", s.NodeName, strings.Join(msgs, "; "))
		}
	}
	if s.ServerURL != "" {
		if u, err := url.Parse(s.ServerURL); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("server", "%q is not an https URL like https://10.0.0.1:6443", s.ServerURL)
		}
	}
	if s.ServerURL != "" && s.Token == "" && s.TokenFile == "" {
		bad("server", "joining %s needs the cluster's token: give --token or --token-file (or K3HA_TOKEN)", s.ServerURL)
	}
	if s.ClusterInit && s.DatastoreEndpoint != "" {
		bad("cluster-init", "cannot be combined with --datastore-endpoint: embedded etcd and an external datastore exclude each other")
	}
	if s.ClusterResetRestorePath != "" && !s.ClusterReset {
		bad("cluster-reset-restore-path", "only works together with --cluster-reset")
	}

	clusterNets := parseCIDRs("cluster-cidr", s.ClusterCIDR, bad)
	serviceNets := parseCIDRs("service-cidr", s.ServiceCIDR, bad)
	for _, c := range clusterNets {
		for _, sv := range serviceNets {
			if c.Overlaps(sv) {
				bad("service-cidr", "%s overlaps --cluster-cidr %s; pods and services need separate ranges", sv, c)
			}
		}
	}
	if s.ClusterDNS == "" && len(serviceNets) > 0 {
		s.ClusterDNS = tenth(serviceNets[0]).String()
	}
	if dns, err := netip.ParseAddr(s.ClusterDNS); err != nil {
		bad("cluster-dns", "%q is not an IP address", s.ClusterDNS)
	} else if len(serviceNets) > 0 && !slices.ContainsFunc(serviceNets, func(p netip.Prefix) bool { return p.Contains(dns) }) {
		bad("cluster-dns", "%s is outside --service-cidr %s", dns, s.ServiceCIDR)
	}
	if msgs := validation.IsDNS1123Subdomain(s.ClusterDomain); len(msgs) > 0 {
		bad("cluster-domain", "%q is not a DNS domain: %s", s.ClusterDomain, strings.Join(msgs, "; "))
	}
	for _, c := range s.Disable {
		if !slices.Contains(KnownComponents, c) {
			bad("disable", "unknown component %q; known: %s", c, joinKnown())
		}
	}
	if mode, err := strconv.ParseUint(s.WriteKubeconfigMode, 8, 32); err != nil || mode > 0o777 {
		bad("write-kubeconfig-mode", "%q is not an octal file mode such as 0600 or 0644", s.WriteKubeconfigMode)
	}
	for flag, args := range map[string][]string{"etcd-arg": s.EtcdArgs, "kube-apiserver-arg": s.KubeAPIServerArgs,
		"kube-controller-manager-arg": s.KubeControllerManagerArgs, "kube-scheduler-arg": s.KubeSchedulerArgs} {
		for _, a := range args {
			if k, _, ok := strings.Cut(a, "="); !ok || k == "" {
				bad(flag, "%q must look like key=value", a)
			}
		}
	}
	if !s.Snapshots.Disable {
		if _, err := cron.ParseStandard(s.Snapshots.Schedule); err != nil {
			bad("etcd-snapshot-schedule-cron", "%q is not a cron schedule (5 fields, e.g. %q): %v", s.Snapshots.Schedule, DefaultSnapshotSchedule, err)
		}
	}
	if s.Snapshots.S3.Enabled && s.Snapshots.S3.Bucket == "" {
		bad("etcd-s3-bucket", "--etcd-s3 needs a bucket")
	}
	errs = append(errs, s.Node.validate()...)
	sortErrs(errs)
	return errors.Join(errs...)
}

// KubeconfigMode returns --write-kubeconfig-mode as a file mode; Validate has checked it.
func (s *Server) KubeconfigMode() uint32 {
	mode, _ := strconv.ParseUint(s.WriteKubeconfigMode, 8, 32)
	return uint32(mode)
}

func parseCIDRs(flag, value string, bad func(string, string, ...any)) []netip.Prefix {
	var out []netip.Prefix
	for _, item := range strings.Split(value, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(item))
		if err != nil {
			bad(flag, "%q is not a CIDR range such as 10.42.0.0/16", item)
			continue
		}
		if p != p.Masked() {
			bad(flag, "%s has host bits set; did you mean %s?", p, p.Masked())
			continue
		}
		out = append(out, p)
	}
	return out
}

// tenth is the 10th address of a range: the cluster DNS's default, as K3s's.
func tenth(p netip.Prefix) netip.Addr {
	a := p.Addr()
	for i := 0; i < 10; i++ {
		a = a.Next()
	}
	return a
}

// sortErrs keeps the report stable although some checks walk maps.
func sortErrs(errs []error) {
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
}
