// Reads {"patterns": [...], "names": [...]} on stdin and writes, for each pattern, null if
// Go's regexp.Compile rejects it, else a string with '1' where MatchString accepts the
// name at that position and '0' where it does not.
package main

import (
	"encoding/json"
	"os"
	"regexp"
)

type input struct {
	Patterns []string `json:"patterns"`
	Names    []string `json:"names"`
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		panic(err)
	}
	out := make([]*string, len(in.Patterns))
	for i, p := range in.Patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			continue
		}
		m := make([]byte, len(in.Names))
		for j, n := range in.Names {
			m[j] = '0'
			if re.MatchString(n) {
				m[j] = '1'
			}
		}
		s := string(m)
		out[i] = &s
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		panic(err)
	}
}
