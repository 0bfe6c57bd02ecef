// HashiCorp's Go client for Vault (github.com/hashicorp/vault/api v1.20.0, unmodified,
// vendored) driving Strongroom's /v1: the calls the `vault` CLI, the External Secrets
// Operator and Terraform make. Reads VAULT_ADDR and VAULT_TOKEN; prints one line per
// check and exits 1 at the first that fails.
package main

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"time"

	vault "github.com/hashicorp/vault/api"
)

var checks int

func check(name string, err error) {
	checks++
	if err != nil {
		fmt.Printf("FAIL %s: %v\n", name, err)
		os.Exit(1)
	}
	fmt.Printf("ok   %s\n", name)
}

func expect(name string, got, want interface{}) {
	if !reflect.DeepEqual(got, want) {
		check(name, fmt.Errorf("got %#v, want %#v", got, want))
	}
	check(name, nil)
}

func main() {
	ctx := context.Background()
	client, err := vault.NewClient(vault.DefaultConfig())
	check("NewClient", err)
	kv := client.KVv2("secret")

	// Put, Get, versions.
	_, err = kv.Put(ctx, "prod/DB", map[string]interface{}{"value": "v1"})
	check("KVv2.Put", err)
	s, err := kv.Put(ctx, "prod/DB", map[string]interface{}{"value": "v2"})
	check("KVv2.Put again", err)
	expect("KVv2.Put version", s.VersionMetadata.Version, 2)
	s, err = kv.Get(ctx, "prod/DB")
	check("KVv2.Get", err)
	expect("KVv2.Get value", s.Data["value"], "v2")
	s, err = kv.GetVersion(ctx, "prod/DB", 1)
	check("KVv2.GetVersion", err)
	expect("KVv2.GetVersion value", s.Data["value"], "v1")
	versions, err := kv.GetVersionsAsList(ctx, "prod/DB")
	check("KVv2.GetVersionsAsList", err)
	expect("KVv2.GetVersionsAsList length", len(versions), 2)

	// Maps, check-and-set, patch (merge-patch first, as `vault kv patch` does).
	_, err = kv.Put(ctx, "prod/APP", map[string]interface{}{"user": "app", "password": "p1"})
	check("KVv2.Put map", err)
	_, err = kv.Put(ctx, "prod/APP", map[string]interface{}{"user": "app", "password": "p2"}, vault.WithCheckAndSet(1))
	check("KVv2.Put with CAS", err)
	_, err = kv.Put(ctx, "prod/APP", map[string]interface{}{"user": "x"}, vault.WithCheckAndSet(1))
	if err == nil {
		check("KVv2.Put with a stale CAS is refused", fmt.Errorf("accepted"))
	}
	check("KVv2.Put with a stale CAS is refused", nil)
	s, err = kv.Patch(ctx, "prod/APP", map[string]interface{}{"password": "p3"})
	check("KVv2.Patch (merge-patch)", err)
	s, err = kv.Get(ctx, "prod/APP")
	check("KVv2.Get after patch", err)
	expect("KVv2.Patch kept the other fields", s.Data, map[string]interface{}{"user": "app", "password": "p3"})
	_, err = kv.Patch(ctx, "prod/APP", map[string]interface{}{"password": "p4"}, vault.WithMergeMethod(vault.KVMergeMethodReadWrite))
	check("KVv2.Patch (read then write)", err)

	// Metadata: written before any data (ESO's PushSecret), null custom metadata, patch.
	err = kv.PutMetadata(ctx, "prod/NEW", vault.KVMetadataPutInput{
		CustomMetadata: map[string]interface{}{"owner": "team-a"},
		MaxVersions:    5,
	})
	check("KVv2.PutMetadata before data", err)
	_, err = kv.Put(ctx, "prod/NEW", map[string]interface{}{"value": "n1"})
	check("KVv2.Put after metadata", err)
	md, err := kv.GetMetadata(ctx, "prod/NEW")
	check("KVv2.GetMetadata", err)
	expect("KVv2.GetMetadata custom metadata", md.CustomMetadata["owner"], "team-a")
	expect("KVv2.GetMetadata max versions", md.MaxVersions, 5)
	err = kv.PutMetadata(ctx, "prod/DB", vault.KVMetadataPutInput{MaxVersions: 7})
	check("KVv2.PutMetadata with null custom metadata", err)
	err = kv.PatchMetadata(ctx, "prod/NEW", vault.KVMetadataPatchInput{
		CustomMetadata: map[string]interface{}{"team": "payments"},
	})
	check("KVv2.PatchMetadata", err)
	md, err = kv.GetMetadata(ctx, "prod/NEW")
	check("KVv2.GetMetadata after patch", err)
	expect("KVv2.PatchMetadata merged", md.CustomMetadata, map[string]interface{}{"owner": "team-a", "team": "payments"})

	// Versions: delete (the client sends strings), undelete, destroy, delete latest.
	err = kv.DeleteVersions(ctx, "prod/DB", []int{1})
	check("KVv2.DeleteVersions", err)
	// As in Vault: a deleted version answers its metadata, with no data.
	s, err = kv.GetVersion(ctx, "prod/DB", 1)
	check("KVv2.GetVersion of a deleted version", err)
	expect("a deleted version has no data", s.Data == nil, true)
	expect("a deleted version has its deletion time", s.VersionMetadata.DeletionTime.IsZero(), false)
	err = kv.Undelete(ctx, "prod/DB", []int{1})
	check("KVv2.Undelete", err)
	s, err = kv.GetVersion(ctx, "prod/DB", 1)
	check("KVv2.GetVersion after undelete", err)
	expect("undeleted value", s.Data["value"], "v1")
	err = kv.Destroy(ctx, "prod/DB", []int{1})
	check("KVv2.Destroy", err)
	err = kv.Delete(ctx, "prod/DB")
	check("KVv2.Delete", err)
	_, err = kv.Rollback(ctx, "prod/NEW", 1)
	check("KVv2.Rollback", err)

	// Listing and the logical API.
	list, err := client.Logical().ListWithContext(ctx, "secret/metadata/prod")
	check("Logical.List", err)
	keys, _ := list.Data["keys"].([]interface{})
	expect("Logical.List keys", len(keys), 3)

	// sys: the mount table, one mount, its tune, and the token's own lookup.
	mounts, err := client.Sys().ListMounts()
	check("Sys.ListMounts", err)
	if mounts["secret/"] == nil {
		check("Sys.ListMounts has secret/", fmt.Errorf("missing"))
	}
	mount, err := client.Sys().GetMount("secret")
	check("Sys.GetMount", err)
	expect("Sys.GetMount type", mount.Type, "kv")
	expect("Sys.GetMount version", mount.Options["version"], "2")
	tune, err := client.Sys().MountConfig("secret")
	check("Sys.MountConfig", err)
	if tune.MaxLeaseTTL < 0 {
		check("Sys.MountConfig ttl", fmt.Errorf("negative"))
	}
	self, err := client.Auth().Token().LookupSelf()
	check("Token.LookupSelf", err)
	if self.Data["policies"] == nil && self.Data["id"] != nil {
		check("Token.LookupSelf never echoes the token", fmt.Errorf("id present"))
	}
	err = kv.DeleteMetadata(ctx, "prod/APP")
	check("KVv2.DeleteMetadata", err)
	_, err = kv.Get(ctx, "prod/APP")
	if err == nil {
		check("a secret whose metadata was deleted is gone", fmt.Errorf("still there"))
	}
	check("a secret whose metadata was deleted is gone", nil)
	identity(client)
	if target := os.Getenv("STRONGROOM_GO_DATABASE_URL"); target != "" {
		database(client, target)
	}
	fmt.Printf("go client: %d checks passed\n", checks)
}

// identity: tokens as identities and an AppRole login, through the Go client's own
// helpers and Logical().Write, as Go programs and Terraform do.
func identity(client *vault.Client) {
	made, err := client.Auth().Token().Create(&vault.TokenCreateRequest{
		Policies:       []string{"default/prod:read"},
		TTL:            "1h",
		ExplicitMaxTTL: "2h",
		DisplayName:    "go",
	})
	check("Token.Create", err)
	accessor, err := made.TokenAccessor()
	check("Secret.TokenAccessor", err)
	if accessor == "" {
		check("Token.Create accessor", fmt.Errorf("empty"))
	}
	child, err := client.Clone()
	check("Client.Clone", err)
	child.SetToken(made.Auth.ClientToken)
	self, err := child.Auth().Token().LookupSelf()
	check("child Token.LookupSelf", err)
	ttl, err := self.TokenTTL()
	check("Secret.TokenTTL", err)
	if ttl <= 0 || ttl > time.Hour {
		check("child ttl", fmt.Errorf("ttl %v", ttl))
	}
	if self.Data["expire_time"] == nil {
		check("child expire_time", fmt.Errorf("missing"))
	}
	renewed, err := child.Auth().Token().RenewSelf(36000)
	check("Token.RenewSelf", err)
	if renewed.Auth.LeaseDuration > 7200 {
		check("Token.RenewSelf capped at the max", fmt.Errorf("%d", renewed.Auth.LeaseDuration))
	}
	looked, err := client.Auth().Token().LookupAccessor(accessor)
	check("Token.LookupAccessor", err)
	expect("Token.LookupAccessor accessor", looked.Data["accessor"], accessor)

	// AppRole: enabled, a role, its ids, a login through Logical().Write.
	err = client.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"})
	check("Sys.EnableAuthWithOptions approle", err)
	_, err = client.Logical().Write("auth/approle/role/go", map[string]interface{}{
		"token_policies": "default/prod:read",
		"token_ttl":      "10m",
	})
	check("approle role", err)
	rid, err := client.Logical().Read("auth/approle/role/go/role-id")
	check("approle role-id", err)
	sid, err := client.Logical().Write("auth/approle/role/go/secret-id", nil)
	check("approle secret-id", err)
	login, err := client.Logical().Write("auth/approle/login", map[string]interface{}{
		"role_id":   rid.Data["role_id"],
		"secret_id": sid.Data["secret_id"],
	})
	check("approle login", err)
	if login.Auth == nil || login.Auth.ClientToken == "" || login.Auth.LeaseDuration <= 0 {
		check("approle login token", fmt.Errorf("%#v", login.Auth))
	}
	watchUntilMaxTTL(client)
	auths, err := client.Sys().ListAuth()
	check("Sys.ListAuth", err)
	if _, ok := auths["approle/"]; !ok {
		check("Sys.ListAuth approle", fmt.Errorf("missing"))
	}

	// Revoked by accessor: the child stops working.
	err = client.Auth().Token().RevokeAccessor(accessor)
	check("Token.RevokeAccessor", err)
	_, err = child.Auth().Token().LookupSelf()
	if err == nil {
		check("a revoked token stops working", fmt.Errorf("still works"))
	}
	check("a revoked token stops working", nil)
}

// watchUntilMaxTTL logs in under a role whose tokens live 2 s and at most 5 s, keeps the
// token alive with the client's LifetimeWatcher (renew-self, capped by the max ttl with a
// shorter lease_duration) until the watcher reports the end, then logs in again, as an
// application using the Go client does.
func watchUntilMaxTTL(client *vault.Client) {
	_, err := client.Logical().Write("auth/approle/role/go-short", map[string]interface{}{
		"token_policies": "default/prod:read",
		"token_ttl":      "2s",
		"token_max_ttl":  "5s",
	})
	check("approle short role", err)
	rid, err := client.Logical().Read("auth/approle/role/go-short/role-id")
	check("approle short role-id", err)
	sid, err := client.Logical().Write("auth/approle/role/go-short/secret-id", nil)
	check("approle short secret-id", err)
	login := func() *vault.Secret {
		made, err := client.Logical().Write("auth/approle/login", map[string]interface{}{
			"role_id":   rid.Data["role_id"],
			"secret_id": sid.Data["secret_id"],
		})
		check("approle short login", err)
		return made
	}
	first := login()
	app, err := client.Clone()
	check("Client.Clone for the watcher", err)
	app.SetToken(first.Auth.ClientToken)
	watcher, err := app.NewLifetimeWatcher(&vault.LifetimeWatcherInput{Secret: first, Increment: 2})
	check("NewLifetimeWatcher", err)
	go watcher.Start()
	defer watcher.Stop()
	renewals := 0
	deadline := time.After(30 * time.Second)
	for {
		select {
		case err := <-watcher.DoneCh():
			check("LifetimeWatcher ends at the max ttl", err)
			if renewals == 0 {
				check("LifetimeWatcher renewed before the end", fmt.Errorf("no renewal"))
			}
			check("LifetimeWatcher renewed before the end", nil)
			again := login()
			app.SetToken(again.Auth.ClientToken)
			_, err = app.Auth().Token().LookupSelf()
			check("a new login after the max ttl works", err)
			return
		case <-watcher.RenewCh():
			renewals++
		case <-deadline:
			check("LifetimeWatcher", fmt.Errorf("never reached the max ttl"))
		}
	}
}

// database drives the database engine through Logical() and the lease helpers: a
// connection, a role, creds, lookup, renewal capped by max_ttl, revocation.
func database(client *vault.Client, target string) {
	_, err := client.Logical().Write("database/config/go-db", map[string]interface{}{
		"plugin_name":    "postgresql-database-plugin",
		"connection_url": target,
		"username":       "postgres",
		"password":       "unused",
		"allowed_roles":  "go",
	})
	check("database/config", err)
	_, err = client.Logical().Write("database/roles/go", map[string]interface{}{
		"db_name":             "go-db",
		"creation_statements": `CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
		"default_ttl":         "10m",
		"max_ttl":             "20m",
	})
	check("database/roles", err)
	creds, err := client.Logical().Read("database/creds/go")
	check("database/creds", err)
	if creds.LeaseID == "" || !creds.Renewable || creds.LeaseDuration != 600 || creds.Data["username"] == nil || creds.Data["password"] == nil {
		check("database/creds shape", fmt.Errorf("%#v", creds))
	}
	looked, err := client.Sys().Lookup(creds.LeaseID)
	check("Sys.Lookup", err)
	expect("Sys.Lookup id", looked.Data["id"], creds.LeaseID)
	renewed, err := client.Sys().Renew(creds.LeaseID, 36000)
	check("Sys.Renew", err)
	if renewed.LeaseDuration > 1200 || renewed.LeaseDuration < 1100 {
		check("Sys.Renew capped by max_ttl", fmt.Errorf("%d", renewed.LeaseDuration))
	}
	check("Sys.Renew capped by max_ttl", nil)
	err = client.Sys().Revoke(creds.LeaseID)
	check("Sys.Revoke", err)
	_, err = client.Sys().Lookup(creds.LeaseID)
	if err == nil {
		check("a revoked lease is gone", fmt.Errorf("still found"))
	}
	check("a revoked lease is gone", nil)
}
