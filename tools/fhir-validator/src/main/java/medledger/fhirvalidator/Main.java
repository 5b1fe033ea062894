package medledger.fhirvalidator;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationResult;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.UnknownCodeSystemWarningValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;

/**
 * Validates FHIR R4 JSON resources with HAPI FHIR's instance validator (the HL7 validator's
 * engine), offline: the R4 core profiles, value sets and code systems shipped in
 * hapi-fhir-validation-resources-r4, the common code systems HAPI knows (UCUM, languages, MIME
 * types, currencies, countries), and no terminology server. A code system none of these knows
 * (LOINC, DICOM, {@code urn:medledger:*}) is a warning, not an error: it cannot be checked here,
 * which is not the same as wrong.
 *
 * <p>Usage: {@code java -jar fhir-validator.jar PATH...} where each PATH is a JSON file or a
 * directory (its {@code *.json} files, in name order), or {@code -} for a JSON array of resources
 * on stdin. One JVM validates them all (the start, loading the R4 definitions, is most of the
 * cost). Prints one JSON line per resource to stdout:
 *
 * <pre>{"input":"a.json","resourceType":"Bundle","errors":0,"warnings":1,"issues":[
 *   {"severity":"warning","location":"Bundle.entry[0]…","message":"…","messageId":"…"}]}</pre>
 *
 * <p>{@code issues} holds the errors (fatal included) and warnings; information messages are
 * counted in {@code information} only. Exits 0 when every input was read and validated, whatever
 * it found (the caller judges the counts); 2 on a usage error or an input that cannot be read.
 */
public final class Main {
  private Main() {}

  /** One resource to validate: where it came from and its JSON text. */
  private record Input(String name, String json) {}

  public static void main(String[] args) throws IOException {
    // HAPI logs through SLF4J (slf4j-simple writes to stderr): warnings only, so that a run's
    // stderr is short and stdout is the report alone.
    System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    // Parsing the shipped R4 definitions warns of elements it skips; nothing of ours.
    System.setProperty("org.slf4j.simpleLogger.log.ca.uhn.fhir.parser.LenientErrorHandler", "error");
    if (args.length == 0 || args[0].equals("-h") || args[0].equals("--help")) {
      System.err.println(
          "usage: fhir-validator PATH... (JSON files, directories of *.json, or - for a JSON"
              + " array on stdin)");
      System.exit(2);
    }
    long started = System.nanoTime();
    List<Input> inputs = new ArrayList<>();
    for (String arg : args) {
      try {
        read(arg, inputs);
      } catch (IOException e) {
        System.err.println("fhir-validator: cannot read " + arg + ": " + e.getMessage());
        System.exit(2);
      }
    }
    FhirValidator validator = validator();
    long ready = System.nanoTime();
    PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
    for (Input in : inputs) {
      out.println(report(in, validator.validateWithResult(in.json())));
    }
    out.flush();
    long done = System.nanoTime();
    System.err.printf(
        "fhir-validator: %d resources, start %d ms, validation %d ms%n",
        inputs.size(), (ready - started) / 1_000_000, (done - ready) / 1_000_000);
  }

  /** The inputs of one argument. */
  private static void read(String arg, List<Input> inputs) throws IOException {
    if (arg.equals("-")) {
      JsonNode array = new ObjectMapper().readTree(System.in);
      if (array == null || !array.isArray()) {
        throw new IOException("stdin must be a JSON array of resources");
      }
      for (int i = 0; i < array.size(); i++) {
        inputs.add(new Input("-[" + i + "]", array.get(i).toString()));
      }
      return;
    }
    Path p = Path.of(arg);
    if (Files.isDirectory(p)) {
      try (Stream<Path> s = Files.list(p)) {
        for (Path f : s.filter(f -> f.toString().endsWith(".json")).sorted().toList()) {
          inputs.add(new Input(f.toString(), Files.readString(f)));
        }
      }
    } else {
      inputs.add(new Input(arg, Files.readString(p)));
    }
  }

  /** HAPI's instance validator on the R4 definitions, offline. */
  private static FhirValidator validator() {
    FhirContext ctx = FhirContext.forR4();
    UnknownCodeSystemWarningValidationSupport unknownSystems =
        new UnknownCodeSystemWarningValidationSupport(ctx);
    unknownSystems.setNonExistentCodeSystemSeverity(IValidationSupport.IssueSeverity.WARNING);
    ValidationSupportChain chain =
        new ValidationSupportChain(
            new DefaultProfileValidationSupport(ctx),
            new CommonCodeSystemsTerminologyService(ctx),
            new InMemoryTerminologyServerValidationSupport(ctx),
            new SnapshotGeneratingValidationSupport(ctx),
            // Last: it answers only for code systems the others do not know.
            unknownSystems);
    FhirInstanceValidator module = new FhirInstanceValidator(chain);
    // Extensions with our own (urn:medledger:…) URLs carry the proofs; R4 allows them.
    module.setAnyExtensionsAllowed(true);
    FhirValidator v = ctx.newValidator();
    v.registerValidatorModule(module);
    return v;
  }

  /** The JSON line for one validated input. */
  private static String report(Input in, ValidationResult r) {
    int errors = 0;
    int warnings = 0;
    int information = 0;
    StringBuilder issues = new StringBuilder();
    for (SingleValidationMessage m : r.getMessages()) {
      ResultSeverityEnum s = m.getSeverity();
      String severity;
      if (s == ResultSeverityEnum.ERROR || s == ResultSeverityEnum.FATAL) {
        errors++;
        severity = s == ResultSeverityEnum.FATAL ? "fatal" : "error";
      } else if (s == ResultSeverityEnum.WARNING) {
        warnings++;
        severity = "warning";
      } else {
        information++;
        continue;
      }
      if (issues.length() > 0) {
        issues.append(',');
      }
      issues
          .append("{\"severity\":")
          .append(quote(severity))
          .append(",\"location\":")
          .append(quote(m.getLocationString()))
          .append(",\"message\":")
          .append(quote(m.getMessage()))
          .append(",\"messageId\":")
          .append(quote(m.getMessageId()))
          .append('}');
    }
    return "{\"input\":"
        + quote(in.name())
        + ",\"resourceType\":"
        + quote(resourceType(in.json()))
        + ",\"errors\":"
        + errors
        + ",\"warnings\":"
        + warnings
        + ",\"information\":"
        + information
        + ",\"issues\":["
        + issues
        + "]}";
  }

  private static String resourceType(String json) {
    try {
      JsonNode t = new ObjectMapper().readTree(json).get("resourceType");
      return t == null ? null : t.asText();
    } catch (IOException e) {
      return null;
    }
  }

  /** A JSON string literal (or null). */
  private static String quote(String s) {
    if (s == null) {
      return "null";
    }
    StringBuilder b = new StringBuilder(s.length() + 2).append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        case '\r' -> b.append("\\r");
        case '\t' -> b.append("\\t");
        default -> {
          if (c < 0x20) {
            b.append(String.format("\\u%04x", (int) c));
          } else {
            b.append(c);
          }
        }
      }
    }
    return b.append('"').toString();
  }
}
