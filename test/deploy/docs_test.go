package deploy

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const deploymentDoc = "docs/deployment.md"

// TestDeploymentDocLinks checks that every relative link of
// docs/deployment.md names a file or directory that exists.
func TestDeploymentDocLinks(t *testing.T) {
	doc := string(readFile(t, deploymentDoc))
	links := regexp.MustCompile(`\]\(([^)#]+)(?:#[^)]*)?\)`).FindAllStringSubmatch(doc, -1)
	if len(links) == 0 {
		t.Fatal("no links found")
	}
	for _, l := range links {
		target := l[1]
		if strings.Contains(target, "://") {
			continue
		}
		rel := path.Clean(path.Join(path.Dir(deploymentDoc), target))
		if _, err := os.Stat(filepath.Join(repoRoot(t), rel)); err != nil {
			t.Errorf("%s links to %s: %v", deploymentDoc, target, err)
		}
	}
}

// TestDeploymentDocListsEveryAlert keeps the alert table of
// docs/deployment.md in step with deploy/prometheus/alerts.yml.
func TestDeploymentDocListsEveryAlert(t *testing.T) {
	doc := string(readFile(t, deploymentDoc))
	var rf ruleFile
	if err := yaml.Unmarshal(readFile(t, alertsFile), &rf); err != nil {
		t.Fatal(err)
	}
	inFile := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			inFile[r.Alert] = true
			if !strings.Contains(doc, "| `"+r.Alert+"` |") {
				t.Errorf("alert %s is not in the table of %s", r.Alert, deploymentDoc)
			}
		}
	}
	for _, m := range regexp.MustCompile("(?m)^\\| `(Bulwark[A-Za-z0-9]+)` \\|").FindAllStringSubmatch(doc, -1) {
		if !inFile[m[1]] {
			t.Errorf("%s lists %s, which %s does not define", deploymentDoc, m[1], alertsFile)
		}
	}
}
