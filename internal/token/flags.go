package token

import (
	"fmt"
	"os"
	"strings"
)

// FromFlags returns the token given as --<flag> value or in the file named
// by --<flag>-file (which wins), and the zero Token when neither is set.
// Errors name the flag to fix.
func FromFlags(value, file, flag string) (Token, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return Token{}, fmt.Errorf("--%s-file: %w", flag, err)
		}
		value = strings.TrimSpace(string(data))
	}
	if value == "" {
		return Token{}, nil
	}
	t, err := Parse(value)
	if err != nil {
		return Token{}, fmt.Errorf("--%s: %w", flag, err)
	}
	return t, nil
}
