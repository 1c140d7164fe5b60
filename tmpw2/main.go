package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pluginpool/pluginpool/host/pool"
)

func main() {
	ctx := context.Background()
	for i := 0; i < 6; i++ {
		cfg := pool.Config{Path: "bin/plugins/double", Workers: 2}
		if i == 5 {
			cfg.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: os.Stderr, TimeFormat: "15:04:05.000000"})
		}
		t0 := time.Now()
		p, err := pool.Start(ctx, cfg)
		if err != nil {
			panic(err)
		}
		t1 := time.Now()
		_, err = p.Apply(ctx, []byte("1"))
		t2 := time.Now()
		if i == 5 {
			fmt.Fprintln(os.Stderr, "CLOSE at", t2.Format("15:04:05.000000"))
		}
		p.Close()
		t3 := time.Now()
		fmt.Println("start", t1.Sub(t0), "apply", t2.Sub(t1), "close", t3.Sub(t2))
	}
}
