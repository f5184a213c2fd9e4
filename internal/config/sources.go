package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// EnvBinding lets environment variables stand in for a flag; the first set
// variable in Vars wins.
type EnvBinding struct {
	Flag string
	Vars []string
}

// Sources are the places a flag's value can come from besides the command line.
type Sources struct {
	Env         []EnvBinding
	LookupEnv   func(string) (string, bool) // os.LookupEnv unless a test replaces it
	DefaultFile string                      // read if present and no --config was given; an explicit --config must exist
}

// Apply fills every flag the command line left unset, first from the
// environment, then from the config file, so that the precedence is
// flag > environment > config file > default.
func (src Sources) Apply(flags *pflag.FlagSet) error {
	lookup := src.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	fromCLI := map[string]bool{}
	flags.Visit(func(f *pflag.Flag) { fromCLI[f.Name] = true })

	fromEnv := map[string]bool{}
	for _, b := range src.Env {
		if fromCLI[b.Flag] {
			continue
		}
		for _, v := range b.Vars {
			val, ok := lookup(v)
			if !ok || val == "" {
				continue
			}
			if err := flags.Set(b.Flag, val); err != nil {
				return fmt.Errorf("environment variable %s: %w", v, err)
			}
			fromEnv[b.Flag] = true
			break
		}
	}

	path, explicit := src.DefaultFile, fromCLI["config"] || fromEnv["config"]
	if f := flags.Lookup("config"); f != nil && explicit {
		path = f.Value.String()
	}
	if path == "" {
		return nil
	}
	values, err := readFile(path, explicit)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		f := flags.Lookup(key)
		if f == nil || key == "config" {
			return fmt.Errorf("config file %s: unknown key %q: there is no flag --%s (keys are named like the flags, without dashes in front)", path, key, key)
		}
		if fromCLI[key] || fromEnv[key] {
			continue
		}
		if err := setFromFile(f, values[key]); err != nil {
			return fmt.Errorf("config file %s: key %q: %w", path, key, err)
		}
		f.Changed = true
	}
	return nil
}

// readFile parses the YAML config file. A missing default file is fine; a
// missing or unreadable file the user named is an error.
func readFile(path string, explicit bool) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !explicit {
			return nil, nil
		}
		return nil, fmt.Errorf("config file: %w (check the --config path and its permissions)", err)
	}
	values := map[string]any{}
	if err := yaml.Unmarshal(data, &values); err != nil {
		return nil, fmt.Errorf("config file %s is not a YAML map of flag names to values: %w", path, err)
	}
	return values, nil
}

func setFromFile(f *pflag.Flag, v any) error {
	if list, ok := v.([]any); ok {
		sv, isSlice := f.Value.(pflag.SliceValue)
		if !isSlice {
			return fmt.Errorf("a list was given but --%s takes a single value", f.Name)
		}
		items := make([]string, 0, len(list))
		for _, item := range list {
			s, err := scalar(item)
			if err != nil {
				return err
			}
			items = append(items, s)
		}
		return sv.Replace(items)
	}
	s, err := scalar(v)
	if err != nil {
		return err
	}
	if sv, isSlice := f.Value.(pflag.SliceValue); isSlice {
		return sv.Replace([]string{s})
	}
	return f.Value.Set(s)
}

func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case nil:
		return "", nil
	default:
		return "", fmt.Errorf("value of type %T is not a string, number, boolean or list", v)
	}
}
