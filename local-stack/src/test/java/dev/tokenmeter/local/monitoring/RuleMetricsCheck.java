package dev.tokenmeter.local.monitoring;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What AlertMetricsIT judges a scrape by: each series selector of a rule (or dashboard query) against the scrape of
 * every job its {@code job} matcher selects; the metric must be there with every label the rule matches or groups by.
 */
public final class RuleMetricsCheck {

    /** Labels Prometheus adds to every scraped series itself. */
    private static final Set<String> TARGET_LABELS = Set.of("job", "instance");

    private RuleMetricsCheck() {
    }

    /** Each selector against the scrape of every job it matches: "job: metric{label}" for what is not there. */
    public static List<String> missing(List<PromRules.Rule> queries, Set<String> recorded,
                                        Map<String, Map<String, List<Map<String, String>>>> scrapes) {
        List<String> missing = new ArrayList<>();
        for (PromRules.Rule rule : queries) {
            for (PromRules.Selector s : rule.selectors()) {
                if (recorded.contains(s.metric())) continue; // made by a recording rule, whose own inputs are checked
                List<String> selectedJobs = scrapes.keySet().stream().filter(job -> selects(s, job)).toList();
                if (selectedJobs.isEmpty()) {
                    missing.add(rule.name() + ": " + s.metric() + " selects no job of prometheus.yml");
                }
                for (String job : selectedJobs) {
                    List<Map<String, String>> series = scrapes.get(job).get(s.metric());
                    if (series == null) {
                        missing.add(rule.name() + ": " + job + " does not export " + s.metric());
                        continue;
                    }
                    List<String> labels = new ArrayList<>(rule.groupingLabels());
                    s.matchers().forEach(m -> labels.add(m.label()));
                    for (String label : labels) {
                        if (!TARGET_LABELS.contains(label) && series.stream().noneMatch(l -> l.containsKey(label))) {
                            missing.add(rule.name() + ": " + job + " exports " + s.metric() + " without the label " + label);
                        }
                    }
                }
            }
        }
        return missing;
    }

    /** Whether the selector's job matcher (none: every job) accepts the job. */
    private static boolean selects(PromRules.Selector s, String job) {
        for (PromRules.Matcher m : s.matchers()) {
            if (!m.label().equals("job")) continue;
            boolean match = switch (m.op()) {
                case "=" -> job.equals(m.value());
                case "!=" -> !job.equals(m.value());
                case "=~" -> job.matches(m.value());
                case "!~" -> !job.matches(m.value());
                default -> throw new IllegalArgumentException("matcher " + m);
            };
            if (!match) return false;
        }
        return true;
    }
}
