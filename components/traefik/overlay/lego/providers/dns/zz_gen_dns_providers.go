// This file replaces lego's list of DNS providers in k3ha's Traefik build
// (see ../../stage.sh): several providers' SDKs are not served by
// the Go module proxy, so the DNS-01 ACME challenge is left out. HTTP-01
// and TLS-ALPN-01 challenges, and every certificate a Secret holds, work.
package dns

import (
	"fmt"

	"github.com/go-acme/lego/v5/challenge"
)

// NewDNSChallengeProviderByName refuses every provider, naming what to use instead.
func NewDNSChallengeProviderByName(name string) (challenge.Provider, error) {
	return nil, fmt.Errorf("DNS challenge provider %q: k3ha's Traefik has no DNS-01 providers; use an HTTP-01 or TLS-ALPN-01 resolver, or a certificate in a Secret", name)
}
