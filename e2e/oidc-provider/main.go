// Command oidc-provider is the OpenID provider the dashboard's OIDC tests log in to: the
// example OP of github.com/zitadel/oidc/v3 (an OpenID-certified library: discovery, JWKS,
// authorization code flow with PKCE, a username/password login page), with one web client
// for the hub and the users of a JSON file. e2e/setup.sh builds it once; the tests start it.
//
// Two things differ from the library's own example main: it listens on a loopback address
// only (the example listens on every interface), and the ID token carries the `email` and
// `groups` claims (the example puts them in userinfo only), which is what the hub maps to
// roles.
//
//	oidc-provider -listen 127.0.0.1:0 -client-id hub -client-secret-file F \
//	  -redirect-uri http://127.0.0.1:P/ui/oidc/callback -users users.json
//
// It prints `issuer <url>` on stdout once it accepts connections.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"

	"golang.org/x/text/language"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// user is one entry of the users file.
type user struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Password string   `json:"password"`
	Email    string   `json:"email"`
	Groups   []string `json:"groups"`
}

type users struct {
	byID map[string]*storage.User
}

func (u users) GetUserByID(id string) *storage.User { return u.byID[id] }

func (u users) GetUserByUsername(name string) *storage.User {
	for _, x := range u.byID {
		if x.Username == name {
			return x
		}
	}
	return nil
}

func (u users) ExampleClientID() string { return storage.ServiceUserID }

// provider is the example's in-memory storage, with the userinfo claims (and `groups`) put in
// the ID token.
type provider struct {
	*storage.Storage
	groups map[string][]string
}

type idTokenClaims struct{ op.Client }

func (idTokenClaims) IDTokenUserinfoClaimsAssertion() bool { return true }

func (c idTokenClaims) IsScopeAllowed(scope string) bool {
	return scope == "groups" || c.Client.IsScopeAllowed(scope)
}

func (p *provider) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := p.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return idTokenClaims{c}, nil
}

func (p *provider) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, token op.IDTokenRequest, scopes []string) error {
	if err := p.Storage.SetUserinfoFromRequest(ctx, info, token, scopes); err != nil {
		return err
	}
	if g, ok := p.groups[token.GetSubject()]; ok && slices.Contains(scopes, "groups") {
		info.AppendClaims("groups", g)
	}
	return nil
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "oidc-provider: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to listen on")
	clientID := flag.String("client-id", "", "the hub's client id")
	secretFile := flag.String("client-secret-file", "", "file holding the hub's client secret")
	redirect := flag.String("redirect-uri", "", "the hub's redirect URI")
	usersFile := flag.String("users", "", "JSON file: [{id, username, password, email, groups}]")
	flag.Parse()
	if *clientID == "" || *secretFile == "" || *redirect == "" || *usersFile == "" {
		fail("-client-id, -client-secret-file, -redirect-uri and -users are required")
	}
	secret, err := os.ReadFile(*secretFile)
	if err != nil {
		fail("%v", err)
	}
	raw, err := os.ReadFile(*usersFile)
	if err != nil {
		fail("%v", err)
	}
	var list []user
	if err := json.Unmarshal(raw, &list); err != nil {
		fail("%s: %v", *usersFile, err)
	}
	store := users{byID: map[string]*storage.User{}}
	groups := map[string][]string{}
	for _, u := range list {
		store.byID[u.ID] = &storage.User{
			ID: u.ID, Username: u.Username, Password: u.Password,
			Email: u.Email, EmailVerified: true, PreferredLanguage: language.English,
		}
		groups[u.ID] = u.Groups
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fail("%v", err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	if !addr.IP.IsLoopback() {
		fail("%s is not a loopback address", addr)
	}
	issuer := fmt.Sprintf("http://%s/", addr)

	storage.RegisterClients(storage.WebClient(*clientID, strings.TrimSpace(string(secret)), *redirect))
	stor := &provider{Storage: storage.NewStorage(store), groups: groups}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	router := exampleop.SetupServer(issuer, stor, logger, false)
	fmt.Printf("issuer %s\n", issuer)
	if err := (&http.Server{Handler: router}).Serve(ln); err != nil {
		fail("%v", err)
	}
}
