package devnet

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/config"
)

// Serve makes the devnet usable from another terminal: the requester's local
// API on loopback, its address and token in Dir/api and Dir/api.token, and its
// key in Dir/identity.key (0600), so that `CUIVRE_DIR=Dir cuivre job run ...`
// signs with it and submits through it.
func (d *Devnet) Serve() (*api.API, error) {
	b, err := crypto.MarshalPrivateKey(d.Requester.Identity())
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(d.Dir, config.IdentityFile), b, 0o600); err != nil {
		return nil, fmt.Errorf("devnet identity: %w", err)
	}
	return d.Requester.ServeAPI("127.0.0.1:0", d.Dir)
}
