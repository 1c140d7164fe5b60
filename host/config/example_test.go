package config_test

import (
	"fmt"

	"github.com/pluginpool/pluginpool/host/config"
)

// Every problem in a file is reported at once, at its line and key.
func ExampleParse() {
	_, err := config.Parse("pool.toml", []byte(`
[pool]
wokers = 4

[plugins.double]
path = "bin/plugins/double"
workers = -1
task_timeout = "5 minutes"

[pipelines.demo]
stages = ["double", "printer"]
`), "/srv/pluginpool")
	fmt.Println(err)
	// Output:
	// pool.toml:3: pool.wokers: unknown key (did you mean "workers"?)
	// pool.toml:7: plugins.double.workers: must be >= 0, got -1
	// pool.toml:8: plugins.double.task_timeout: "5 minutes" is not a duration: write Go syntax such as "200ms", "1m30s" or "2h"
	// pool.toml:11: pipelines.demo.stages[1]: unknown plugin "printer": add a [plugins.printer] table
}

// A stage may override pool keys for itself only.
func ExampleFile_StageConfig() {
	f, err := config.Parse("pool.toml", []byte(`
[pool]
workers = 4

[plugins.double]
path = "bin/plugins/double"

[pipelines.demo]
stages = ["double", {plugin = "double", workers = 1}]
`), "/srv/pluginpool")
	if err != nil {
		panic(err)
	}
	pp, _ := f.DefaultPipeline()
	for i := range pp.Stages {
		cfg, _ := f.StageConfig(pp, i)
		fmt.Println(cfg.Path, cfg.Workers, string(cfg.PluginConfig))
	}
	// Output:
	// /srv/pluginpool/bin/plugins/double 4 {}
	// /srv/pluginpool/bin/plugins/double 1 {}
}
