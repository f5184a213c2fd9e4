// Command sh is the shell of k3ha's local-path helper image: a POSIX shell
// interpreter (mvdan.cc/sh) whose mkdir, rm, chmod and other basic
// utilities run in-process, so the image needs no other file. The local
// path provisioner runs it as `/bin/sh /script/setup ...`.
//
//	sh FILE [ARG...]
//	sh -c SCRIPT [ARG...]
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"mvdan.cc/sh/moreinterp/coreutils"
	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	var src io.Reader = os.Stdin
	name := "stdin"
	switch {
	case len(args) >= 2 && args[0] == "-c":
		src, name, args = strings.NewReader(args[1]), "-c", args[2:]
	case len(args) >= 1:
		f, err := os.Open(args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, "sh:", err)
			return 127
		}
		defer f.Close()
		src, name, args = f, args[0], args[1:]
	}
	file, err := syntax.NewParser().Parse(src, name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sh:", err)
		return 2
	}
	r, err := interp.New(
		interp.StdIO(os.Stdin, os.Stdout, os.Stderr),
		interp.Env(expand.ListEnviron(os.Environ()...)),
		interp.ExecHandlers(coreutils.ExecHandler),
		interp.Params(append([]string{"--"}, args...)...),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sh:", err)
		return 2
	}
	err = r.Run(context.Background(), file)
	if status, ok := interp.IsExitStatus(err); ok {
		return int(status)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sh:", err)
		return 1
	}
	return 0
}
