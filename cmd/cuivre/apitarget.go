package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/config"
)

// The environment variables that stand for --api and --api-token.
const (
	apiEnv      = "CUIVRE_API"
	apiTokenEnv = "CUIVRE_API_TOKEN"
)

// apiFlags are the global flags that name a node's API directly, for a node
// reached through an SSH tunnel rather than through its data dir.
var apiFlags apiTarget

// apiTarget is where the CLI finds a node's API, and with what token.
type apiTarget struct {
	addr, token, tokenFile string
}

func addAPIFlags(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.StringVar(&apiFlags.addr, "api", "", "the node's API address, such as http://127.0.0.1:4243 through an SSH tunnel (default $"+apiEnv+", else the data dir's)")
	pf.StringVar(&apiFlags.token, "api-token", "", "the token of the node --api names: its data dir's api.token (default $"+apiTokenEnv+")")
	pf.StringVar(&apiFlags.tokenFile, "api-token-file", "", "a file holding the token of the node --api names, which keeps it out of the process list")
}

// resolve is where the API is, from the flags t, else the environment,
// else nowhere (ok false: the data dir's daemon is meant). A token from the
// environment alone is left unused: it belongs to the address it came with.
func (t apiTarget) resolve(getenv func(string) string, readFile func(string) ([]byte, error)) (base, token string, ok bool, err error) {
	addr, from := t.addr, "--api"
	if addr == "" {
		addr, from = getenv(apiEnv), apiEnv
	}
	if addr == "" {
		if t.token != "" || t.tokenFile != "" {
			return "", "", false, errors.New("--api-token and --api-token-file go with --api (or " + apiEnv + "): the data dir's daemon is reached with the token in the data dir")
		}
		return "", "", false, nil
	}
	if base, err = apiBase(addr); err != nil {
		return "", "", false, fmt.Errorf("%s %q: %w", from, addr, err)
	}
	switch {
	case t.token != "" && t.tokenFile != "":
		return "", "", false, errors.New("give --api-token or --api-token-file, not both")
	case t.token != "":
		token = t.token
	case t.tokenFile != "":
		b, err := readFile(t.tokenFile)
		if err != nil {
			return "", "", false, fmt.Errorf("--api-token-file: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return "", "", false, fmt.Errorf("--api-token-file %s is empty: copy the node's api.token into it", t.tokenFile)
		}
	default:
		token = getenv(apiTokenEnv)
	}
	if token == "" {
		return "", "", false, fmt.Errorf("%s %s needs the node's API token: give --api-token, --api-token-file or %s (the node writes it to api.token in its data dir, anew at each start)", from, addr, apiTokenEnv)
	}
	return base, token, true, nil
}

// apiBase reads an API address: a URL of scheme http or https, or a bare
// host:port, taken as http.
func apiBase(addr string) (string, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	switch {
	case err != nil:
		return "", err
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("scheme %s: use http://HOST:PORT", u.Scheme)
	case u.Host == "":
		return "", errors.New("no host: use http://HOST:PORT, such as http://127.0.0.1:4243")
	case strings.Trim(u.Path, "/") != "" || u.RawQuery != "":
		return "", errors.New("give the API's address alone, with no path: http://HOST:PORT")
	}
	return u.Scheme + "://" + u.Host, nil
}

// remoteAPI is the client of the API that --api or $CUIVRE_API name; ok is
// false when neither does.
func remoteAPI() (c *api.Client, ok bool, err error) {
	base, token, ok, err := apiFlags.resolve(os.Getenv, os.ReadFile)
	if !ok || err != nil {
		return nil, ok || err != nil, err
	}
	return api.NewClient(base, token), true, nil
}

// remoteKey is the key that signs the jobs placed through a node reached by
// --api: the identity of the data dir here, which the node never sees.
// The customer's key may be other than the node's (SPEC 1).
func remoteKey() (crypto.PrivKey, error) {
	dir, err := resolveDir()
	if err != nil {
		return nil, err
	}
	key, err := config.LoadIdentity(dir)
	if err != nil {
		return nil, fmt.Errorf("a job is signed with the customer's identity key, and --api reaches the node's API only: "+
			"give --data-dir a data dir that holds identity.key (`cuivre init --role requester --data-dir DIR` makes one; "+
			"copy the node's own identity.key there to sign as the node): %w", err)
	}
	return key, nil
}
