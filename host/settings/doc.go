// Package settings is the one table of pluginpool's tunables: for each, its
// key in pool.toml, the Go field it sets (in pool.Config, cluster.Config or
// cluster.NATS), its type, its default, its bounds, the CLI flag that
// overrides it, and what it does. Everything else follows the table:
//
//   - host/config parses and validates the [pool], [plugins.NAME] and
//     stage keys (Pool) and the [cluster] table's (Cluster) with it,
//     reporting problems at their file and line;
//   - pool.Config and cluster.Config fill in defaults and check bounds with
//     Apply, naming the Go field;
//   - the CLI registers the flags of the keys that have one (Key.Flag);
//   - a test checks that the shipped pool.toml documents every key.
//
// Adding a setting is one row here and the field it names. The zero value
// of a Go field always means "the default"; a key that accepts 0 in
// pool.toml must mean the same by it (Key.Zero says what), so a config
// never sets a value a Config cannot hold.
package settings
