package config

import "strings"

// Pos is a position in the config file (1-based line and column).
type Pos struct{ Line, Col int }

// positions maps a YAML path such as "routes[0].upstream" to where its
// value (or key) stands in the file.
type positions map[string]Pos

// Pos returns where the value at path (such as "routes[2].cors") stands in
// the file. For a path that is not in the file (a key left to its default)
// it returns the position of the nearest enclosing value that is, so a
// later stage can always point somewhere useful; the zero Pos when not even
// the document is known (a Config not made by Load or Parse).
func (c *Config) Pos(path string) Pos {
	return c.pos.find(path)
}

// keyPos returns where the key of path stands, falling back to Pos.
func (c *Config) keyPos(path string) Pos {
	if p, ok := c.keys[path]; ok {
		return p
	}
	return c.pos.find(path)
}

func (ps positions) find(path string) Pos {
	for {
		if p, ok := ps[path]; ok {
			return p
		}
		if path == "" {
			return Pos{}
		}
		path = parentPath(path)
	}
}

// parentPath strips the last element of a YAML path: "a.b[2]" -> "a.b",
// "a.b" -> "a", "a" -> "".
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// joinPath appends a mapping key to a YAML path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
