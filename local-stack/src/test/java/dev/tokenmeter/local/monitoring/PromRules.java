package dev.tokenmeter.local.monitoring;

import org.yaml.snakeyaml.Yaml;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A Prometheus rules file read for what the tests check: each rule's name and expression, and the series selectors
 * in the expression (metric name, label matchers) with the labels it groups or matches by. Not a PromQL parser: a
 * lexer that knows which identifiers are functions, aggregations and keywords, enough for the rules of this
 * repository (promtool checks their syntax; PromRulesTest pins what this reads from them).
 */
public final class PromRules {

    /** A recording rule ({@code alert == false}) or an alert. */
    public record Rule(String name, boolean alert, String expr) {
        /** The selectors of the expression, in order. */
        public List<Selector> selectors() {
            return PromRules.selectors(expr);
        }

        /** Labels of {@code by (...)}, {@code without (...)}, {@code on (...)}, {@code ignoring (...)}, {@code group_left (...)}. */
        public Set<String> groupingLabels() {
            return PromRules.groupingLabels(expr);
        }
    }

    /** {@code metric{label op "value", ...}}. */
    public record Selector(String metric, List<Matcher> matchers) {
    }

    public record Matcher(String label, String op, String value) {
    }

    private static final Set<String> KEYWORDS = Set.of("and", "or", "unless", "bool", "offset", "by", "without", "on",
            "ignoring", "group_left", "group_right", "inf", "nan");
    private static final Set<String> GROUPING = Set.of("by", "without", "on", "ignoring", "group_left", "group_right");

    private final List<Rule> rules;

    private PromRules(List<Rule> rules) {
        this.rules = rules;
    }

    @SuppressWarnings("unchecked")
    public static PromRules read(Path file) throws IOException {
        Map<String, Object> yaml = new Yaml().load(Files.readString(file));
        List<Rule> rules = new ArrayList<>();
        for (Map<String, Object> group : (List<Map<String, Object>>) yaml.get("groups")) {
            for (Map<String, Object> r : (List<Map<String, Object>>) group.get("rules")) {
                boolean alert = r.containsKey("alert");
                rules.add(new Rule(String.valueOf(alert ? r.get("alert") : r.get("record")), alert, String.valueOf(r.get("expr"))));
            }
        }
        return new PromRules(rules);
    }

    public List<Rule> all() {
        return rules;
    }

    public List<Rule> alerts() {
        return rules.stream().filter(Rule::alert).toList();
    }

    /** Names the file's recording rules produce (they are not scraped). */
    public Set<String> recordedNames() {
        Set<String> names = new LinkedHashSet<>();
        rules.stream().filter(r -> !r.alert()).forEach(r -> names.add(r.name()));
        return names;
    }

    /** For each case of {@code alertname} in a promtool test file: whether it expects the alert to fire. */
    @SuppressWarnings("unchecked")
    static List<Boolean> casesOf(String testFile, String alertName) {
        Map<String, Object> yaml = new Yaml().load(testFile);
        List<Boolean> cases = new ArrayList<>();
        for (Map<String, Object> test : (List<Map<String, Object>>) yaml.get("tests")) {
            for (Map<String, Object> c : (List<Map<String, Object>>) test.getOrDefault("alert_rule_test", List.of())) {
                if (alertName.equals(c.get("alertname"))) {
                    List<?> expected = (List<?>) c.get("exp_alerts");
                    cases.add(expected != null && !expected.isEmpty());
                }
            }
        }
        return cases;
    }

    // ------------------------------------------------------------------ lexing

    private record Token(String text, char kind) { // kind: i identifier, s string, n number/duration, p punctuation
    }

    private static List<Token> lex(String expr) {
        List<Token> out = new ArrayList<>();
        int i = 0;
        while (i < expr.length()) {
            char c = expr.charAt(i);
            if (Character.isWhitespace(c)) {
                i++;
            } else if (c == '#') { // a comment runs to the end of the line
                while (i < expr.length() && expr.charAt(i) != '\n') i++;
            } else if (c == '"' || c == '\'' || c == '`') {
                StringBuilder s = new StringBuilder();
                int j = i + 1;
                while (j < expr.length() && expr.charAt(j) != c) {
                    if (expr.charAt(j) == '\\' && c != '`' && j + 1 < expr.length()) j++;
                    s.append(expr.charAt(j++));
                }
                if (j >= expr.length()) throw new IllegalArgumentException("unterminated string in " + expr);
                out.add(new Token(s.toString(), 's'));
                i = j + 1;
            } else if (Character.isLetter(c) || c == '_' || c == ':') {
                int j = i;
                while (j < expr.length() && (Character.isLetterOrDigit(expr.charAt(j)) || expr.charAt(j) == '_' || expr.charAt(j) == ':')) j++;
                out.add(new Token(expr.substring(i, j), 'i'));
                i = j;
            } else if (Character.isDigit(c) || (c == '.' && i + 1 < expr.length() && Character.isDigit(expr.charAt(i + 1)))) {
                int j = i;
                while (j < expr.length() && (Character.isLetterOrDigit(expr.charAt(j)) || expr.charAt(j) == '.')) j++;
                out.add(new Token(expr.substring(i, j), 'n'));
                i = j;
            } else {
                String two = i + 1 < expr.length() ? expr.substring(i, i + 2) : "";
                if (List.of("=~", "!~", "!=", "==", ">=", "<=").contains(two)) {
                    out.add(new Token(two, 'p'));
                    i += 2;
                } else {
                    out.add(new Token(String.valueOf(c), 'p'));
                    i++;
                }
            }
        }
        return out;
    }

    static List<Selector> selectors(String expr) {
        List<Token> t = lex(expr);
        List<Selector> out = new ArrayList<>();
        int depthBracket = 0;
        for (int i = 0; i < t.size(); i++) {
            Token tok = t.get(i);
            if (tok.kind() == 'p' && tok.text().equals("[")) depthBracket++;
            if (tok.kind() == 'p' && tok.text().equals("]")) depthBracket--;
            if (depthBracket > 0 || tok.kind() != 'i') continue;
            String next = i + 1 < t.size() ? t.get(i + 1).text() : "";
            if (KEYWORDS.contains(tok.text())) {
                if (GROUPING.contains(tok.text()) && next.equals("(")) {
                    while (i < t.size() && !t.get(i).text().equals(")")) i++; // the label list is not a selector
                }
                continue;
            }
            if (next.equals("(") || next.equals("by") || next.equals("without")) continue; // a function or an aggregation
            List<Matcher> matchers = new ArrayList<>();
            if (next.equals("{")) {
                int j = i + 2;
                while (j < t.size() && !t.get(j).text().equals("}")) {
                    if (t.get(j).text().equals(",")) {
                        j++;
                        continue;
                    }
                    matchers.add(new Matcher(t.get(j).text(), t.get(j + 1).text(), t.get(j + 2).text()));
                    j += 3;
                }
                i = j;
            }
            out.add(new Selector(tok.text(), matchers));
        }
        return out;
    }

    static Set<String> groupingLabels(String expr) {
        List<Token> t = lex(expr);
        Set<String> labels = new LinkedHashSet<>();
        for (int i = 0; i + 1 < t.size(); i++) {
            if (t.get(i).kind() == 'i' && GROUPING.contains(t.get(i).text()) && t.get(i + 1).text().equals("(")) {
                for (int j = i + 2; j < t.size() && !t.get(j).text().equals(")"); j++) {
                    if (t.get(j).kind() == 'i') labels.add(t.get(j).text());
                }
            }
        }
        return labels;
    }

    /** Each selector's metric with the labels its matchers name, merged over the file (recorded names left out). */
    public Map<String, Set<String>> metricsAndLabels() {
        Map<String, Set<String>> out = new LinkedHashMap<>();
        for (Rule r : rules) {
            for (Selector s : r.selectors()) {
                if (recordedNames().contains(s.metric())) continue;
                Set<String> labels = out.computeIfAbsent(s.metric(), k -> new LinkedHashSet<>());
                s.matchers().forEach(m -> labels.add(m.label()));
                labels.addAll(r.groupingLabels());
            }
        }
        return out;
    }
}
