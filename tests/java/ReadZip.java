// Reads a package with java.util.zip.ZipInputStream, front to back as a stream, the way
// PASS's Java consumers do, and checks every entry against the package's own manifests:
//   manifest-<alg>.txt / tagmanifest-<alg>.txt  "<hex>  <path>" (SimpleZip, BagIt)
//   mets.xml      fileSec CHECKSUM (MD5) and SIZE per FLocat href (DSpace METS SIP)
//   manifest.txt  "<type>\t<label>\t<name>" names every other entry (NIHMS)
// Every entry must be covered by one of them, except the manifests themselves.
// Usage: java ReadZip PACKAGE.zip simple|bagit|mets|nihms (which manifests the format has)
// Prints one line per entry, then "OK <n> entries"; exits 1 naming the first problem
// (ZipInputStream itself checks each entry's CRC and sizes).
import java.io.BufferedInputStream;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

public final class ReadZip {
    private static final String[] ALGORITHMS = {"md5", "sha256", "sha512"};
    private static final String METS = "http://www.loc.gov/METS/";
    private static final String XLINK = "http://www.w3.org/1999/xlink";

    private static final class Seen {
        final long size;
        final Map<String, String> digests;

        Seen(long size, Map<String, String> digests) {
            this.size = size;
            this.digests = digests;
        }
    }

    private final Map<String, Seen> entries = new LinkedHashMap<>();
    private final Map<String, byte[]> manifests = new HashMap<>();
    private final Set<String> covered = new HashSet<>();
    private final Set<String> manifestNames = new HashSet<>();
    private final String kind;

    private ReadZip(String kind) {
        this.kind = kind;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2 || !List.of("simple", "bagit", "mets", "nihms").contains(args[1])) {
            System.err.println("usage: java ReadZip PACKAGE.zip simple|bagit|mets|nihms");
            System.exit(2);
        }
        ReadZip reader = new ReadZip(args[1]);
        try {
            reader.read(args[0]);
            reader.check();
        } catch (IllegalStateException | IOException e) {
            System.out.println("FAIL " + e.getMessage());
            System.exit(1);
        }
        System.out.println("OK " + reader.entries.size() + " entries");
    }

    private boolean isManifest(String name) {
        switch (kind) {
            case "simple":
                return name.matches("manifest-[a-z0-9]+\\.txt");
            case "bagit":
                return name.matches("[^/]+/(tag)?manifest-[a-z0-9]+\\.txt");
            case "mets":
                return name.equals("mets.xml");
            default:
                return name.equals("manifest.txt");
        }
    }

    private void read(String path) throws IOException, NoSuchAlgorithmException {
        try (InputStream file = new BufferedInputStream(new FileInputStream(path));
             ZipInputStream zip = new ZipInputStream(file, StandardCharsets.UTF_8)) {
            byte[] buffer = new byte[65536];
            ZipEntry entry;
            while ((entry = zip.getNextEntry()) != null) {
                String name = entry.getName();
                if (entries.containsKey(name)) {
                    throw new IllegalStateException("entry " + name + " appears twice");
                }
                Map<String, MessageDigest> digests = new LinkedHashMap<>();
                digests.put("md5", MessageDigest.getInstance("MD5"));
                digests.put("sha256", MessageDigest.getInstance("SHA-256"));
                digests.put("sha512", MessageDigest.getInstance("SHA-512"));
                ByteArrayOutputStream kept = isManifest(name) ? new ByteArrayOutputStream() : null;
                long size = 0;
                int n;
                while ((n = zip.read(buffer)) > 0) {
                    for (MessageDigest digest : digests.values()) {
                        digest.update(buffer, 0, n);
                    }
                    if (kept != null) {
                        kept.write(buffer, 0, n);
                    }
                    size += n;
                }
                if (entry.getSize() >= 0 && entry.getSize() != size) {
                    throw new IllegalStateException(name + ": header says " + entry.getSize()
                            + " bytes, read " + size);
                }
                Map<String, String> hex = new HashMap<>();
                for (Map.Entry<String, MessageDigest> digest : digests.entrySet()) {
                    hex.put(digest.getKey(), toHex(digest.getValue().digest()));
                }
                entries.put(name, new Seen(size, hex));
                if (kept != null) {
                    manifests.put(name, kept.toByteArray());
                    manifestNames.add(name);
                }
                String method = entry.getMethod() == ZipEntry.STORED ? "STORED" : "DEFLATED";
                System.out.println(method + "\t" + size + "\t" + hex.get("md5") + "\t" + name);
            }
        }
        if (entries.isEmpty()) {
            throw new IllegalStateException("no entries");
        }
    }

    private void check() throws IOException {
        for (Map.Entry<String, byte[]> manifest : manifests.entrySet()) {
            String name = manifest.getKey();
            String text = new String(manifest.getValue(), StandardCharsets.UTF_8);
            String leaf = name.substring(name.lastIndexOf('/') + 1);
            String folder = name.substring(0, name.lastIndexOf('/') + 1);
            if (name.equals("mets.xml")) {
                checkMets(manifest.getValue());
            } else if (name.equals("manifest.txt")) {
                checkNihms(text);
            } else {
                String alg = leaf.substring(leaf.indexOf('-') + 1, leaf.length() - 4);
                checkDigests(folder, alg, text, name);
            }
        }
        List<String> uncovered = new ArrayList<>();
        for (String name : entries.keySet()) {
            if (!covered.contains(name) && !manifestNames.contains(name)) {
                uncovered.add(name);
            }
        }
        if (manifests.isEmpty() || !uncovered.isEmpty()) {
            throw new IllegalStateException("entries no manifest covers: " + uncovered);
        }
    }

    private Seen entry(String name, String manifest) {
        Seen seen = entries.get(name);
        if (seen == null) {
            throw new IllegalStateException(manifest + " names " + name + ", not in the zip");
        }
        covered.add(name);
        return seen;
    }

    private void checkDigests(String folder, String alg, String text, String manifest) {
        if (!List.of(ALGORITHMS).contains(alg)) {
            throw new IllegalStateException(manifest + ": unknown algorithm " + alg);
        }
        for (String line : text.split("\n")) {
            if (line.isEmpty()) {
                continue;
            }
            int gap = line.indexOf("  ");
            String expected = line.substring(0, gap);
            String path = folder + line.substring(gap + 2);
            String actual = entry(path, manifest).digests.get(alg);
            if (!actual.equals(expected)) {
                throw new IllegalStateException(path + ": " + alg + " " + actual + ", "
                        + manifest + " says " + expected);
            }
        }
    }

    private void checkMets(byte[] xml) throws IOException {
        Document doc;
        try {
            DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
            factory.setNamespaceAware(true);
            factory.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
            doc = factory.newDocumentBuilder().parse(new ByteArrayInputStream(xml));
        } catch (Exception e) {
            throw new IOException("mets.xml does not parse: " + e.getMessage(), e);
        }
        NodeList files = doc.getElementsByTagNameNS(METS, "file");
        for (int i = 0; i < files.getLength(); i++) {
            Element file = (Element) files.item(i);
            Element locat = (Element) file.getElementsByTagNameNS(METS, "FLocat").item(0);
            String href = locat.getAttributeNS(XLINK, "href");
            Seen seen = entry(href, "mets.xml");
            if (!"MD5".equals(file.getAttribute("CHECKSUMTYPE"))
                    || !seen.digests.get("md5").equals(file.getAttribute("CHECKSUM"))
                    || seen.size != Long.parseLong(file.getAttribute("SIZE"))) {
                throw new IllegalStateException(href + ": mets.xml says MD5 "
                        + file.getAttribute("CHECKSUM") + " SIZE " + file.getAttribute("SIZE")
                        + ", read " + seen.digests.get("md5") + " " + seen.size);
            }
        }
    }

    private void checkNihms(String text) {
        for (String line : text.split("\n")) {
            String[] fields = line.split("\t", -1);
            if (fields.length != 3 || fields[1].isEmpty()) {
                throw new IllegalStateException("manifest.txt line without type, label and "
                        + "name: " + line);
            }
            entry(fields[2], "manifest.txt");
        }
    }

    private static String toHex(byte[] bytes) {
        StringBuilder hex = new StringBuilder();
        for (byte b : bytes) {
            hex.append(String.format("%02x", b));
        }
        return hex.toString();
    }
}
