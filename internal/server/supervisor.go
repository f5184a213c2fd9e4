package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/k3ha/k3ha/internal/bootstrap"
	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/datastore/etcd"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/supervisor"
)

// serverSupervisor feeds the supervisor paths from this server's parts.
type serverSupervisor struct {
	*supervisor.Supervisor
	api atomic.Pointer[kubernetes.Clientset]
	ops sync.Map // operation name → supervisor.Operation, registered once its part runs
}

// register makes an operation available to `k3ha` commands.
func (s *serverSupervisor) register(name string, op supervisor.Operation) { s.ops.Store(name, op) }

// jsonOperation adapts a typed operation.
func jsonOperation[In, Out any](fn func(context.Context, In) (Out, error)) supervisor.Operation {
	return func(ctx context.Context, body []byte) (any, error) {
		var in In
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, fmt.Errorf("bad request: %w", err)
		}
		return fn(ctx, in)
	}
}

func newSupervisor(cfg *config.Server, l layout.Server, files prepared, st store, tokens *liveTokens) *serverSupervisor {
	s := &serverSupervisor{Supervisor: &supervisor.Supervisor{
		CACerts:   files.serverCA,
		Secrets:   tokens.secrets,
		Critical:  cfg.Critical(),
		StaticDir: l.StaticDir(),
		Bootstrap: func() (supervisor.BootstrapFiles, error) {
			d, err := bootstrap.Collect(l)
			return supervisor.BootstrapFiles{Files: d.Files}, err
		},
	}}
	if e, ok := st.(*etcd.Etcd); ok {
		s.Members = func(ctx context.Context) ([]supervisor.Member, error) {
			list, err := e.Members(ctx)
			if err != nil {
				return nil, err
			}
			out := make([]supervisor.Member, 0, len(list))
			for _, m := range list {
				out = append(out, supervisor.Member{Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
			}
			return out, nil
		}
	}
	s.APIServers = s.apiservers
	s.Supervisor.Operation = func(name string) (supervisor.Operation, bool) {
		op, ok := s.ops.Load(name)
		if !ok {
			return nil, false
		}
		return op.(supervisor.Operation), true
	}
	s.Supervisor.NodeCerts = func(ctx context.Context, req supervisor.NodeCertsRequest) (supervisor.NodeCerts, error) {
		var cs kubernetes.Interface
		if c := s.api.Load(); c != nil {
			cs = c
		}
		return issueNodeCerts(ctx, l, cs, req)
	}
	return s
}

// useAPI gives the supervisor a client once the apiserver is up.
func (s *serverSupervisor) useAPI(cs *kubernetes.Clientset) { s.api.Store(cs) }

// apiservers lists every server's API address from the endpoints of the
// kubernetes Service, which each apiserver keeps itself in.
func (s *serverSupervisor) apiservers(ctx context.Context) ([]string, error) {
	cs := s.api.Load()
	if cs == nil {
		return nil, errors.New("the apiserver is not ready yet")
	}
	slices, err := cs.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=kubernetes"})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, sl := range slices.Items {
		for _, p := range sl.Ports {
			if p.Port == nil {
				continue
			}
			for _, ep := range sl.Endpoints {
				for _, addr := range ep.Addresses {
					out = append(out, net.JoinHostPort(addr, strconv.Itoa(int(*p.Port))))
				}
			}
		}
	}
	return out, nil
}
