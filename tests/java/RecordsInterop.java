import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.record.internal.*;

/**
 * The Java side of tests/java_codec.rs: {@code write <dir>} writes record batches with the
 * Java client's own builder and codecs (every codec; magic 2, and magic 0 and 1 where the
 * client can still write them); {@code dump <dir> <files...>} reads batch files with the
 * Java client's reader, validating every CRC, and prints them in the canonical text form the
 * Rust test prints too.
 */
public class RecordsInterop {
    public static void main(String[] args) throws Exception {
        Path dir = Paths.get(args[1]);
        if (args[0].equals("write")) {
            write(dir);
        } else {
            for (int i = 2; i < args.length; i++) {
                System.out.print("== " + args[i] + "\n" + dump(Files.readAllBytes(dir.resolve(args[i]))));
            }
        }
    }

    static SimpleRecord[] records(int n, int valueLen) {
        return records(n, valueLen, true);
    }

    static SimpleRecord[] records(int n, int valueLen, boolean withHeaders) {
        SimpleRecord[] recs = new SimpleRecord[n];
        for (int i = 0; i < n; i++) {
            byte[] key = i % 5 == 0 ? null : ("key-" + i).getBytes(StandardCharsets.UTF_8);
            byte[] value = null;
            if (i % 7 != 0) {
                value = new byte[(i * 31) % valueLen];
                for (int j = 0; j < value.length; j++) value[j] = (byte) ("abcdefgh".charAt((i + j / 16) % 8));
            }
            Header[] headers = withHeaders && i % 3 == 0
                ? new Header[] {new RecordHeader("h\u00e9" + i, ("hv" + i).getBytes(StandardCharsets.UTF_8)), new RecordHeader("null", null)}
                : new Header[0];
            recs[i] = new SimpleRecord(1_700_000_000_000L + (i * 37) % 11, key, value, headers);
        }
        return recs;
    }

    static void write(Path dir) throws Exception {
        for (CompressionType t : CompressionType.values()) {
            Compression c = Compression.of(t).build();
            List<ByteBuffer> parts = new ArrayList<>();
            parts.add(MemoryRecords.withRecords(100L, c, records(50, 300)).buffer());
            parts.add(MemoryRecords.withIdempotentRecords(150L, c, 42L, (short) 3, 17, 5, records(20, 50)).buffer());
            parts.add(MemoryRecords.withTransactionalRecords(170L, c, 43L, (short) 1, 0, 5, records(10, 50)).buffer());
            // Larger than one 64 KiB LZ4 block and several 32 KiB snappy blocks.
            parts.add(MemoryRecords.withRecords(180L, c, records(100, 4000)).buffer());
            parts.add(MemoryRecords.withRecords(RecordBatch.MAGIC_VALUE_V2, 280L, c, TimestampType.LOG_APPEND_TIME, records(20, 100)).buffer());
            parts.add(MemoryRecords.withEndTransactionMarker(300L, 1_700_000_000_999L, 5, 43L, (short) 1,
                new EndTransactionMarker(ControlRecordType.COMMIT, 9)).buffer());
            Files.write(dir.resolve("java-v2-" + t.name + ".bin"), concat(parts));
            if (t != CompressionType.ZSTD) {
                for (byte magic : new byte[] {0, 1}) {
                    try {
                        ByteBuffer legacy = MemoryRecords.withRecords(magic, 1000L, c, TimestampType.CREATE_TIME, records(30, 300, false)).buffer();
                        Files.write(dir.resolve("java-v" + magic + "-" + t.name + ".bin"), concat(List.of(legacy)));
                        if (magic == 1) {
                            ByteBuffer appendTime = MemoryRecords.withRecords(magic, 2000L, c, TimestampType.LOG_APPEND_TIME, records(10, 100, false)).buffer();
                            Files.write(dir.resolve("java-v1-" + t.name + "-log-append-time.bin"), concat(List.of(appendTime)));
                        }
                    } catch (Exception e) {
                        System.err.println("cannot write magic " + magic + ": " + e);
                    }
                }
            }
        }
    }

    static byte[] concat(List<ByteBuffer> parts) {
        int len = parts.stream().mapToInt(ByteBuffer::remaining).sum();
        ByteBuffer out = ByteBuffer.allocate(len);
        for (ByteBuffer p : parts) out.put(p.duplicate());
        return out.array();
    }

    static String hex(ByteBuffer b) {
        if (b == null) return "null";
        StringBuilder s = new StringBuilder();
        ByteBuffer d = b.duplicate();
        while (d.hasRemaining()) s.append(String.format("%02x", d.get()));
        return s.toString();
    }

    static String dump(byte[] bytes) {
        StringBuilder out = new StringBuilder();
        for (RecordBatch batch : MemoryRecords.readableRecords(ByteBuffer.wrap(bytes)).batches()) {
            batch.ensureValid();
            out.append(String.format("batch magic=%d codec=%d %slast=%d pid=%d epoch=%d seq=%d txn=%b ctl=%b tstype=%d maxts=%d%n",
                batch.magic(), batch.compressionType().id,
                batch.magic() >= 2 ? "base=" + batch.baseOffset() + " count=" + batch.countOrNull() + " " : "",
                batch.lastOffset(), batch.producerId(), batch.producerEpoch(), batch.baseSequence(),
                batch.isTransactional(), batch.isControlBatch(), batch.timestampType().id, batch.maxTimestamp()));
            for (org.apache.kafka.common.record.internal.Record r : batch) {
                if (batch.magic() < 2) r.ensureValid();
                StringBuilder h = new StringBuilder();
                for (Header header : r.headers()) {
                    h.append(hex(ByteBuffer.wrap(header.key().getBytes(StandardCharsets.UTF_8)))).append(':')
                        .append(header.value() == null ? "null" : hex(ByteBuffer.wrap(header.value()))).append(',');
                }
                out.append(String.format("record %d %d key=%s value=%s headers=%s%n",
                    r.offset(), r.timestamp(), hex(r.key()), hex(r.value()), h));
            }
        }
        return out.toString();
    }
}
