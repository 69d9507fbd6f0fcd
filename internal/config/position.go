package config

// Pos is a position in the config file (1-based line and column).
type Pos struct{ Line, Col int }

// positions maps a YAML path such as "routes[0].upstream" to where its
// value (or key) stands in the file.
type positions map[string]Pos
