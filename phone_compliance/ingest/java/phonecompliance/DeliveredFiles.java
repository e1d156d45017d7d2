package phonecompliance;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.security.NoSuchAlgorithmException;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.Text;
import org.apache.hadoop.io.compress.CodecPool;
import org.apache.hadoop.io.compress.CompressionCodec;
import org.apache.hadoop.io.compress.CompressionCodecFactory;
import org.apache.hadoop.io.compress.Decompressor;
import org.apache.hadoop.util.LineReader;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.connector.catalog.SupportsRead;
import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.catalog.TableCapability;
import org.apache.spark.sql.connector.catalog.TableProvider;
import org.apache.spark.sql.connector.expressions.Transform;
import org.apache.spark.sql.connector.read.Batch;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;
import org.apache.spark.sql.connector.read.Scan;
import org.apache.spark.sql.connector.read.ScanBuilder;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;
import org.apache.spark.unsafe.types.UTF8String;
import org.apache.spark.util.SerializableConfiguration;

/**
 * A Spark data source reading delivered files (SPEC §1) straight into Bronze's parsed rows: each
 * line after the header through {@link LineParser}, with its lineage (file, file date, file
 * timestamp, 1-based physical line number) and, for a rejected line, its text as delivered (R1.2).
 *
 * <p>Spark's text reader and a UDF would do the same in three steps: lines as Spark strings, each
 * converted to a Java string for the UDF and its results converted back. Here lines are read with
 * Hadoop's own line reader (the text reader's: LF, CR or CRLF ends a line) and the parser writes
 * Spark's values directly.
 *
 * <p>Options (bronze.py writes them): {@code files}, a JSON list of {@code [group, uri, name,
 * file_date, file_ts, layout]} (a group is one Spark partition, its files read in list order);
 * {@code secret_ssn_hash_key}, the SSN hash key in hex (an option, not a literal in the plan:
 * the query's printed plans do not show it). The schema is given by the reader
 * ({@code line_parser.SCHEMA}).
 */
public final class DeliveredFiles implements TableProvider {
  // After the parser's values: the lineage set per file, then the rejected line's text.
  static final String[] LINEAGE = {"source_file", "file_date", "file_ts", "line_number", "raw_text"};
  static final int COLUMNS = LineParser.VALUES + LINEAGE.length;

  @Override
  public StructType inferSchema(CaseInsensitiveStringMap options) {
    throw new IllegalArgumentException("DeliveredFiles needs its schema (line_parser.SCHEMA)");
  }

  @Override
  public boolean supportsExternalMetadata() {
    return true;
  }

  @Override
  public Table getTable(StructType schema, Transform[] partitioning, Map<String, String> props) {
    String[] expected = new String[COLUMNS];
    System.arraycopy(LineParser.OUTPUT, 0, expected, 0, LineParser.VALUES);
    System.arraycopy(LINEAGE, 0, expected, LineParser.VALUES, LINEAGE.length);
    if (!Arrays.equals(schema.fieldNames(), expected)) {
      throw new IllegalArgumentException(
          "DeliveredFiles reads the columns " + Arrays.toString(expected) + ", not "
              + Arrays.toString(schema.fieldNames()));
    }
    return new FilesTable(schema);
  }

  /** One delivered file: where it is, its lineage and its header's layout. */
  record File(String uri, String name, int fileDate, String fileTs, String layout)
      implements Serializable {}

  /** The files one Spark partition reads, in order. */
  record Group(List<File> files) implements InputPartition {}

  private static final class FilesTable implements Table, SupportsRead {
    private final StructType schema;

    FilesTable(StructType schema) {
      this.schema = schema;
    }

    @Override
    public String name() {
      return "delivered_files";
    }

    @Override
    // Spark 4.0 deprecates Table.schema() for columns() but still declares it abstract.
    @SuppressWarnings("deprecation")
    public StructType schema() {
      return schema;
    }

    @Override
    public Set<TableCapability> capabilities() {
      return EnumSet.of(TableCapability.BATCH_READ);
    }

    @Override
    public ScanBuilder newScanBuilder(CaseInsensitiveStringMap options) {
      return () -> new FilesScan(schema, options);
    }
  }

  private static final class FilesScan implements Scan, Batch {
    private final StructType schema;
    private final List<Group> groups = new ArrayList<>();
    private final byte[] key;

    FilesScan(StructType schema, CaseInsensitiveStringMap options) {
      this.schema = schema;
      this.key = HexFormat.of().parseHex(options.getOrDefault("secret_ssn_hash_key", ""));
      Map<Integer, List<File>> byGroup = new TreeMap<>();
      try {
        for (String[] f : new ObjectMapper().readValue(options.get("files"), String[][].class)) {
          int day = (int) LocalDate.parse(f[3]).toEpochDay();
          byGroup
              .computeIfAbsent(Integer.parseInt(f[0]), g -> new ArrayList<>())
              .add(new File(f[1], f[2], day, f[4], f[5]));
        }
      } catch (IOException e) {
        throw new UncheckedIOException("bad `files` option of DeliveredFiles", e);
      }
      byGroup.values().forEach(files -> groups.add(new Group(files)));
    }

    @Override
    public StructType readSchema() {
      return schema;
    }

    @Override
    public String description() {
      return "DeliveredFiles(" + groups.stream().mapToInt(g -> g.files().size()).sum() + " files)";
    }

    @Override
    public Batch toBatch() {
      return this;
    }

    @Override
    public InputPartition[] planInputPartitions() {
      return groups.toArray(new InputPartition[0]);
    }

    @Override
    public PartitionReaderFactory createReaderFactory() {
      Configuration conf = SparkSession.active().sparkContext().hadoopConfiguration();
      return new ReaderFactory(new SerializableConfiguration(conf), key);
    }
  }

  private record ReaderFactory(SerializableConfiguration conf, byte[] key)
      implements PartitionReaderFactory {
    @Override
    public PartitionReader<InternalRow> createReader(InputPartition partition) {
      return new Reader(((Group) partition).files(), conf.value(), key);
    }
  }

  /** Reads a group's files one after the other, each from its second line (after the header). */
  private static final class Reader implements PartitionReader<InternalRow> {
    private final List<File> files;
    private final Configuration conf;
    private final byte[] key;
    private final Text text = new Text();
    private int next = 0;
    private File file;
    private UTF8String fileName;
    private UTF8String fileTs;
    private LineParser parser;
    private InputStream stream;
    private Decompressor decompressor;
    private LineReader lines;
    private long lineNumber;
    private InternalRow row;

    Reader(List<File> files, Configuration conf, byte[] key) {
      this.files = files;
      this.conf = conf;
      this.key = key;
    }

    @Override
    public boolean next() throws IOException {
      while (true) {
        if (lines == null && !open()) {
          return false;
        }
        if (lines.readLine(text) == 0) {
          close();
          continue;
        }
        if (++lineNumber == 1) {
          continue; // the header, read when the file was inspected
        }
        byte[] line = Arrays.copyOf(text.getBytes(), text.getLength());
        Object[] values = new Object[COLUMNS];
        try {
          parser.parse(line, values);
        } catch (CloneNotSupportedException e) {
          throw new IllegalStateException(e);
        }
        int at = LineParser.VALUES;
        values[at] = fileName;
        values[at + 1] = file.fileDate();
        values[at + 2] = fileTs;
        values[at + 3] = lineNumber;
        // Raw text is kept for rejects only (R1.2): accepted rows carry every field already.
        values[at + 4] = values[at - 1] != null ? UTF8String.fromBytes(line) : null;
        row = new GenericInternalRow(values);
        return true;
      }
    }

    private boolean open() throws IOException {
      if (next == files.size()) {
        return false;
      }
      file = files.get(next++);
      fileName = UTF8String.fromString(file.name());
      fileTs = UTF8String.fromString(file.fileTs());
      try {
        parser = new LineParser(file.layout(), key);
      } catch (NoSuchAlgorithmException e) {
        throw new IllegalStateException(e);
      }
      Path path = new Path(file.uri());
      FileSystem fs = path.getFileSystem(conf);
      if (fs instanceof LocalFileSystem local) {
        // Without the checksum file beside it: its path (".<name>.crc") is not a valid Hadoop
        // path when the name holds a colon, and delivered files have none.
        fs = local.getRawFileSystem();
      }
      InputStream raw = fs.open(path);
      CompressionCodec codec = new CompressionCodecFactory(conf).getCodec(path);
      if (codec != null) {
        decompressor = CodecPool.getDecompressor(codec);
        stream = codec.createInputStream(raw, decompressor);
      } else {
        stream = raw;
      }
      lines = new LineReader(stream, conf);
      lineNumber = 0;
      return true;
    }

    @Override
    public InternalRow get() {
      return row;
    }

    @Override
    public void close() throws IOException {
      if (lines != null) {
        lines.close();
        lines = null;
      }
      if (decompressor != null) {
        CodecPool.returnDecompressor(decompressor);
        decompressor = null;
      }
    }
  }
}
