package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/host/pipeline"
	"github.com/pluginpool/pluginpool/host/pool"
)

// The seed's demo as a library call: double → printer over 1..5, with one
// bad item. Failures are reported as they are found; results are written
// through a 256 KiB buffer, here flushed when the run ends. Each stage
// runs on local processes (pool.Starter); cluster.Starter would run it on
// a cluster's workers. binDir is where TestMain built plugins/double and
// plugins/printer; a program would use bin/plugins.
func Example() {
	spec := pipeline.Spec{
		Stages: []backend.StartFunc{
			pool.Starter(pool.Config{Path: filepath.Join(binDir, "double"), Workers: 2}),
			pool.Starter(pool.Config{Path: filepath.Join(binDir, "printer"), Workers: 2, PluginConfig: []byte(`{"format": "Number: %v"}`)}),
		},
		Input:  strings.NewReader("1\n2\n\"three\"\n4\n5\n"),
		Output: os.Stdout,
		OnFailure: func(f *pipeline.Failure) {
			fmt.Println("failed:", f)
		},
	}
	sum, err := pipeline.Run(context.Background(), spec)
	fmt.Printf("%d ok, %d failed: %v\n", sum.Succeeded, sum.Failed, errors.Is(err, pipeline.ErrFailed))
	// Output:
	// failed: line 3: stage 1 (double): bad input: cannot decode input "three" as number: want a number, got a JSON string
	// Number: 2
	// Number: 4
	// Number: 8
	// Number: 10
	// 4 ok, 1 failed: true
}
