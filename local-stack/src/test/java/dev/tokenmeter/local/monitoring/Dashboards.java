package dev.tokenmeter.local.monitoring;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;

/** The PromQL queries of a Grafana dashboard's panels (rows' nested panels included). */
public final class Dashboards {

    private Dashboards() {
    }

    public static List<String> expressions(JsonNode dashboard) {
        List<String> out = new ArrayList<>();
        collect(dashboard.path("panels"), out);
        return out;
    }

    private static void collect(JsonNode panels, List<String> out) {
        for (JsonNode panel : panels) {
            for (JsonNode target : panel.path("targets")) {
                if (target.hasNonNull("expr")) out.add(target.get("expr").asText());
            }
            collect(panel.path("panels"), out);
        }
    }
}
