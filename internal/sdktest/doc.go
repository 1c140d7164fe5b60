// Package sdktest is the behaviour suite every pluginpool SDK passes: one
// table of cases (ordering, errors, panics and exceptions, retries, crashes,
// timeouts, cancellation, output lines, logs, large items, Init config,
// shutdown, stdin) run through host/pool, with real plugin processes,
// against each SDK's implementation of the same test plugins.
//
// The test plugins are chosen by the environment variable SDKTEST_PLUGIN;
// SDKTEST_DIR is a directory the plugin may write marker files to. The Go
// implementation is this package's test binary itself (plugins_test.go);
// the Python one is testdata/plugins.py. docs/PROTOCOL.md ("Checking an
// SDK") lists what each plugin does; to check a third SDK, implement the
// same plugins in it and add an entry to the implementations table in
// suite_test.go.
package sdktest
