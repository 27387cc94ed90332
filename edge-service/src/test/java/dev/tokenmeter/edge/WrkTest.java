package dev.tokenmeter.edge;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** EdgeBenchmark reads wrk's printed report: every unit as printed, errors of every kind counted. */
class WrkTest {

    /** wrk 4.1.0's output (Debian 12), with the shell's stat line the harness appends. */
    private static final String PRINTED = """
            Running 2s test @ http://127.0.0.1:18091/v1/chat/completions
              1 threads and 1 connections
              Thread Stats   Avg      Stdev     Max   +/- Stdev
                Latency   119.18us  459.07us   5.43ms   95.84%
                Req/Sec    27.18k     4.44k   30.84k    85.71%
              Latency Distribution
                 50%   28.00us
                 75%   30.00us
                 90%   67.00us
                 99%    2.81ms
              56526 requests in 2.10s, 14.61MB read
              Non-2xx or 3xx responses: 12
              Socket errors: connect 1, read 2, write 3, timeout 4
            Requests/sec:  26921.44
            Transfer/sec:      6.96MB
            @@raw n=35140 p50=30.0 p99=256.2 max=32232.2
            @@shell-stat 8017 (bash) S 7994 7994 5004 0 -1 4194304 197 348 0 0 0 1 29 70 20 0 1 0 37314 4464640 800
            """;

    @Test
    void readsLatenciesInTheirPrintedUnits() {
        Wrk.Report r = Wrk.parse(PRINTED);
        assertThat(r.p(50)).isEqualTo(28.0);
        assertThat(r.p(90)).isEqualTo(67.0);
        assertThat(r.p(99)).isCloseTo(2810.0, within(1e-9));
        assertThat(r.meanMicros()).isCloseTo(119.18, within(1e-9));
        assertThat(r.maxMicros()).isCloseTo(5430.0, within(1e-9));
        assertThat(r.requests()).isEqualTo(56526);
        assertThat(r.seconds()).isCloseTo(2.10, within(1e-9));
        assertThat(r.perSecond()).isCloseTo(26921.44, within(1e-9));
    }

    @Test
    void readsTheTimedScriptsRawPercentilesBesideWrksCorrectedOnes() {
        Wrk.Report r = Wrk.parse(PRINTED);
        assertThat(r.rawP50Micros()).isEqualTo(30.0);
        assertThat(r.rawP99Micros()).isEqualTo(256.2);
        assertThat(Wrk.parse(PRINTED.replace("@@raw", "(none)")).rawP99Micros()).isNaN();
    }

    @Test
    void countsNon2xxAndEverySocketErrorAsErrors() {
        assertThat(Wrk.parse(PRINTED).errors()).isEqualTo(12 + 1 + 2 + 3 + 4);
    }

    @Test
    void readsWrksCpuFromTheShellsChildTimes() {
        // cutime 29 + cstime 70 ticks of 10 ms
        assertThat(Wrk.parse(PRINTED).cpuNanos()).isEqualTo(990_000_000L);
    }

    @Test
    void everyUnitWrkPrints() {
        assertThat(Wrk.micros("256.00us")).isEqualTo(256.0);
        assertThat(Wrk.micros("1.02ms")).isCloseTo(1020.0, within(1e-9));
        assertThat(Wrk.micros("2.00s")).isEqualTo(2_000_000.0);
        assertThat(Wrk.micros("1.50m")).isEqualTo(90_000_000.0);
        assertThat(Wrk.micros("1.00h")).isEqualTo(3_600_000_000.0);
        assertThatThrownBy(() -> Wrk.micros("3.00ns")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void aReportWithoutItsDistributionIsRefused() {
        assertThatThrownBy(() -> Wrk.parse("Running 2s test @ http://x\nunable to connect to 127.0.0.1:1 Connection refused\n"))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("cannot read wrk's report");
    }
}
