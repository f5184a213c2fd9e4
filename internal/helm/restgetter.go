package helm

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// restGetter gives Helm's Kubernetes client the server's own connection,
// in place of a kubeconfig file. Discovery and the REST mapper are kept,
// so Helm's resets after installing a chart's CRDs reach the ones it uses.
type restGetter struct {
	cfg       *rest.Config
	namespace string
	disc      discovery.CachedDiscoveryInterface
	mapper    meta.ResettableRESTMapper
}

func newRESTGetter(cfg *rest.Config, namespace string) (*restGetter, error) {
	d, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disc := memory.NewMemCacheClient(d)
	return &restGetter{cfg: cfg, namespace: namespace, disc: disc,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(disc)}, nil
}

func (g *restGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.cfg), nil }

func (g *restGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.disc, nil
}

func (g *restGetter) ToRESTMapper() (meta.RESTMapper, error) { return g.mapper, nil }

// ToRawKubeConfigLoader only carries the namespace: Helm reads its default
// namespace from it.
func (g *restGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return clientcmd.NewDefaultClientConfig(clientcmdapi.Config{},
		&clientcmd.ConfigOverrides{Context: clientcmdapi.Context{Namespace: g.namespace}})
}
