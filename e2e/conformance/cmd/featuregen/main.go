// featuregen writes the Gateway API feature names and conformance tests of the suite version in
// go.mod into upstream/ (run from e2e/conformance: `go run ./cmd/featuregen`). With -check it
// writes nothing and fails when the committed files differ.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"fleetgate.dev/e2e/conformance/upstream"
)

func main() {
	check := flag.Bool("check", false, "fail when the committed files differ instead of writing them")
	dir := flag.String("dir", "upstream", "folder of the generated files")
	flag.Parse()
	stale := false
	for file, text := range map[string]string{upstream.FeaturesFile: upstream.FeaturesTSV(), upstream.TestsFile: upstream.TestsTSV()} {
		path := filepath.Join(*dir, file)
		if *check {
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, []byte(text)) {
				fmt.Fprintf(os.Stderr, "%s is stale: run `go run ./cmd/featuregen` in e2e/conformance\n", path)
				stale = true
			}
			continue
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("wrote", path)
	}
	if stale {
		os.Exit(1)
	}
}
