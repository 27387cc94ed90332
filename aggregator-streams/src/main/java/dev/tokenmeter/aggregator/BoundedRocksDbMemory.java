package dev.tokenmeter.aggregator;

import org.apache.kafka.streams.state.RocksDBConfigSetter;
import org.rocksdb.BlockBasedTableConfig;
import org.rocksdb.Cache;
import org.rocksdb.LRUCache;
import org.rocksdb.Options;
import org.rocksdb.WriteBufferManager;

import java.util.Map;

/**
 * Bounds the native memory of every RocksDB store of this JVM together (ADR 0096): one block cache of
 * {@code ROCKSDB_MEMORY_MIB} shared by all stores, with the memtables charged to it through one write buffer manager
 * (at most a quarter of it) and the index and filter blocks kept in it too. Without it each store instance gets its
 * own 50 MB block cache and up to three 16 MB memtables, so the aggregator's RSS grows with the number of stores and
 * partitions it holds (the 2026-12-04 soak: +22 MiB over its last 20 minutes with a flat heap).
 *
 * <p>Kafka Streams makes one instance of this class per store; the cache and the manager are shared (static), made
 * on the first store from {@link #MEMORY_BYTES_CONFIG}, and never closed per store (they live as long as the JVM).
 */
public final class BoundedRocksDbMemory implements RocksDBConfigSetter {

    /** The streams property carrying the bound in bytes (from ROCKSDB_MEMORY_MIB). */
    public static final String MEMORY_BYTES_CONFIG = "tokenmeter.rocksdb.memory.bytes";
    /** Share of the cache the memtables may take before RocksDB flushes them. */
    static final double MEMTABLE_SHARE = 0.25;
    /** Share of the cache kept for index and filter blocks (high priority). */
    static final double INDEX_FILTER_SHARE = 0.1;

    private static Shared shared;

    record Shared(long capacityBytes, Cache cache, WriteBufferManager writeBuffers) {
    }

    static synchronized Shared shared(long capacityBytes) {
        if (shared == null) {
            Cache cache = new LRUCache(capacityBytes, -1, false, INDEX_FILTER_SHARE);
            shared = new Shared(capacityBytes, cache, new WriteBufferManager((long) (capacityBytes * MEMTABLE_SHARE), cache));
        }
        return shared;
    }

    @Override
    public void setConfig(String storeName, Options options, Map<String, Object> configs) {
        Object bytes = configs.get(MEMORY_BYTES_CONFIG);
        if (!(bytes instanceof Number n) || n.longValue() <= 0) {
            throw new IllegalArgumentException(MEMORY_BYTES_CONFIG + " must be a positive number of bytes, not " + bytes);
        }
        Shared s = shared(n.longValue());
        // The table config Kafka Streams made (its bloom filter and format) with our cache, not a new one.
        BlockBasedTableConfig table = (BlockBasedTableConfig) options.tableFormatConfig();
        table.setBlockCache(s.cache());
        table.setCacheIndexAndFilterBlocks(true);
        table.setCacheIndexAndFilterBlocksWithHighPriority(true);
        table.setPinTopLevelIndexAndFilter(true);
        options.setWriteBufferManager(s.writeBuffers());
        options.setTableFormatConfig(table);
    }

    @Override
    public void close(String storeName, Options options) {
        // The cache and the write buffer manager are shared by every store: not closed with one of them.
    }
}
