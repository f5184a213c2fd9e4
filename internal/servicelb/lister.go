package servicelb

import (
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
)

// lister reads what the controller's informers hold.
type lister struct {
	svc   corelisters.ServiceLister
	node  corelisters.NodeLister
	pod   corelisters.PodLister
	slice discoverylisters.EndpointSliceLister
	ds    appslisters.DaemonSetLister
}
