package dev.tokenmeter.aggregator;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Properties;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * ADR 0096: the stores' native memory is charged to the one shared cache. Real RocksDB stores (TopologyTestDriver keeps
 * persistent stores in RocksDB) take ~60 MB of values; the memtables holding them are charged to the shared cache, whose
 * usage grows with the writes and stays within its capacity, as flushes make room. Without the setter the shared cache
 * would not be used at all (each store would have its own cache and memtables, outside any bound).
 */
class BoundedRocksDbMemoryTest {

    private static final long BOUND = 32L * 1024 * 1024;

    @Test
    void twoStoresWritingSixtyMegabytesStayWithinTheSharedBound(@TempDir Path stateDir) {
        StreamsBuilder builder = new StreamsBuilder();
        for (String store : new String[] {"a", "b"}) {
            builder.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(store), Serdes.String(), Serdes.String())
                    .withCachingDisabled().withLoggingDisabled());
        }
        builder.stream("in", org.apache.kafka.streams.kstream.Consumed.with(Serdes.String(), Serdes.String()))
                .process(() -> new Processor<String, String, Void, Void>() {
                    private KeyValueStore<String, String> a;
                    private KeyValueStore<String, String> b;

                    @Override
                    public void init(org.apache.kafka.streams.processor.api.ProcessorContext<Void, Void> context) {
                        a = context.getStateStore("a");
                        b = context.getStateStore("b");
                    }

                    @Override
                    public void process(Record<String, String> r) {
                        (r.key().hashCode() % 2 == 0 ? a : b).put(r.key(), r.value());
                    }
                }, "a", "b");
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, "bounded-rocksdb");
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        p.put(StreamsConfig.ROCKSDB_CONFIG_SETTER_CLASS_CONFIG, BoundedRocksDbMemory.class);
        p.put(BoundedRocksDbMemory.MEMORY_BYTES_CONFIG, BOUND);
        try (TopologyTestDriver driver = new TopologyTestDriver(builder.build(), p)) {
            // Another test of this JVM may have made the shared cache first: its capacity is the bound in force.
            BoundedRocksDbMemory.Shared shared = BoundedRocksDbMemory.shared(BOUND);
            long before = shared.cache().getUsage();
            TestInputTopic<String, String> in = driver.createInputTopic("in", new StringSerializer(), new StringSerializer());
            String value = "v".repeat(1000);
            long maxUsage = 0;
            for (int i = 0; i < 60_000; i++) {
                in.pipeInput("key-" + i, value);
                if (i % 1000 == 0) {
                    maxUsage = Math.max(maxUsage, shared.cache().getUsage());
                }
            }
            maxUsage = Math.max(maxUsage, shared.cache().getUsage());
            assertThat(maxUsage - before).as("the memtables' bytes are charged to the shared cache")
                    .isGreaterThan(1024L * 1024);
            assertThat(maxUsage).as("60 MB written, the shared cache's usage stays within its capacity %d", shared.capacityBytes())
                    .isLessThanOrEqualTo(shared.capacityBytes() + shared.capacityBytes() / 20);
            KeyValueStore<String, String> a = driver.getKeyValueStore("a");
            KeyValueStore<String, String> b = driver.getKeyValueStore("b");
            assertThat(a.approximateNumEntries() + b.approximateNumEntries()).as("every value kept").isGreaterThan(50_000);
            assertThat(a.get("key-0") != null ? a.get("key-0") : b.get("key-0")).isEqualTo(value);
        }
    }
}
