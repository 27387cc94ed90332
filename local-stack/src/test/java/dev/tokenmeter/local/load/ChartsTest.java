package dev.tokenmeter.local.load;

import dev.tokenmeter.testkit.csv.CsvTable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

import javax.xml.parsers.DocumentBuilderFactory;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class ChartsTest {

    @TempDir
    Path dir;

    private static Document parse(String html) throws Exception {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setNamespaceAware(true);
        f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", false);
        f.setFeature("http://apache.org/xml/features/nonvalidating/load-external-dtd", false);
        return f.newDocumentBuilder().parse(new ByteArrayInputStream(html.getBytes(StandardCharsets.UTF_8)));
    }

    private static List<Element> svgs(Document doc) {
        NodeList nodes = doc.getElementsByTagNameNS("http://www.w3.org/2000/svg", "svg");
        List<Element> out = new ArrayList<>();
        for (int i = 0; i < nodes.getLength(); i++) {
            out.add((Element) nodes.item(i));
        }
        return out;
    }

    private static List<String> texts(Element svg) {
        NodeList nodes = svg.getElementsByTagNameNS("http://www.w3.org/2000/svg", "text");
        List<String> out = new ArrayList<>();
        for (int i = 0; i < nodes.getLength(); i++) {
            out.add(nodes.item(i).getTextContent());
        }
        return out;
    }

    @Test
    void oneWellFormedChartPerColumnWithAxesAndMinMax() throws Exception {
        Path csv = dir.resolve("s.csv");
        List<String> cols = List.of("time", "elapsed_s", "rss_bytes", "fds", "p99 <ms> & \"more\"", "lag");
        String[][] rows = {
                {"2026-12-03T10:00:00Z", "0", "1000", "200", "5", ""},
                {"2026-12-03T10:00:10Z", "10", "1500", "200", "", ""},
                {"2026-12-03T10:00:20Z", "20", "1200", "200", "7.25", "x"},
                {"2026-12-03T10:00:30Z", "30", "1800", "200", "6", ""},
        };
        for (String[] r : rows) {
            java.util.Map<String, String> m = new java.util.HashMap<>();
            for (int i = 0; i < cols.size(); i++) {
                m.put(cols.get(i), r[i]);
            }
            CsvTable.append(csv, cols, m);
        }
        Path html = dir.resolve("charts.html");
        Charts.main(new String[] {csv.toString(), html.toString(), "soak <test>"});
        String page = Files.readString(html);

        assertThat(page).as("self-contained").doesNotContain("<script", "<link", "src=", "href=", "@import", "url(");
        Document doc = parse(page);
        assertThat(doc.getElementsByTagName("title").item(0).getTextContent()).isEqualTo("soak <test>");
        List<Element> charts = svgs(doc);
        assertThat(charts).extracting(e -> e.getAttribute("data-column"))
                .containsExactly("rss_bytes", "fds", "p99 <ms> & \"more\"", "lag");

        Element rss = charts.get(0);
        assertThat(texts(rss)).contains("rss_bytes", "1800", "1000", "0 s", "30 s", "last 1800");
        String points = rss.getElementsByTagNameNS("http://www.w3.org/2000/svg", "polyline").item(0)
                .getAttributes().getNamedItem("points").getNodeValue();
        assertThat(points.split(" ")).hasSize(4);

        // a constant series: one level line, its value as both min and max, no NaN or Infinity in the drawing
        Element fds = charts.get(1);
        assertThat(texts(fds)).contains("200", "last 200");
        String fdPoints = fds.getElementsByTagNameNS("http://www.w3.org/2000/svg", "polyline").item(0)
                .getAttributes().getNamedItem("points").getNodeValue();
        assertThat(fdPoints.split(" ")).extracting(p -> p.split(",")[1]).containsOnly(fdPoints.split(" ")[0].split(",")[1]);

        // a gap: the missing second value splits the line into a lone point and a run of two
        Element p99 = charts.get(2);
        assertThat(p99.getElementsByTagNameNS("http://www.w3.org/2000/svg", "circle").getLength()).isEqualTo(1);
        assertThat(p99.getElementsByTagNameNS("http://www.w3.org/2000/svg", "polyline").getLength()).isEqualTo(1);
        assertThat(texts(p99)).contains("7.250", "5", "last 6, 1 missing");

        // no number at all
        assertThat(texts(charts.get(3))).contains("no values");

        assertThat(page).doesNotContain("NaN", "Infinity");
    }

    @Test
    void withoutElapsedTheXAxisIsTheSampleNumber() throws Exception {
        CsvTable t = CsvTable.parse("a\r\n1\r\n2\r\n");
        Document doc = parse(Charts.html(t, "t"));
        assertThat(svgs(doc)).hasSize(1);
        assertThat(texts(svgs(doc).get(0))).contains("#0", "#1");
    }
}
