// Validates every object of multi-document YAML files against the official Kubernetes schemas (the
// kubernetes-models package: the OpenAPI schemas of Kubernetes' own API, compiled to validators), and custom
// resources against the openAPIV3Schema of the CRDs given with --crd.
//
//   node check.mjs [--crd CRD.yaml]... FILE...      ('-' reads standard input)
//
// Prints one line per error, naming the file, the document, the object and the field path; ends with a
// summary line. Exit status: 0 when every object is valid, 1 when any is not, 2 for a usage or setup error.
// kubernetes-models' schemas do not forbid unknown fields; the C# tests that call this also read each
// object into its k8s.Models type with unknown members refused.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const usage = "usage: node check.mjs [--crd CRD.yaml]... FILE... ('-' reads standard input)";

function parseArgs(argv) {
  const crds = [];
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--crd") {
      if (i + 1 >= argv.length) throw new UsageError("--crd needs a file");
      crds.push(argv[++i]);
    } else if (argv[i].startsWith("--")) {
      throw new UsageError(`unknown option ${argv[i]}`);
    } else {
      files.push(argv[i]);
    }
  }
  if (files.length === 0) throw new UsageError("no file to check");
  return { crds, files };
}

class UsageError extends Error {}

function read(file) {
  return readFileSync(file === "-" ? 0 : file, "utf8");
}

/** Every document of a file as { index, object } or { index, error } for one that does not parse. */
function documents(file) {
  const out = [];
  parseAllDocuments(read(file)).forEach((doc, index) => {
    if (doc.errors.length > 0) {
      out.push({ index, error: doc.errors.map((e) => e.message).join("; ") });
      return;
    }
    const object = doc.toJS();
    if (object !== null && object !== undefined) out.push({ index, object });
  });
  return out;
}

/** apiVersion -> [group, version]; the core group is "". */
function splitApiVersion(apiVersion) {
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? ["", apiVersion] : [apiVersion.slice(0, slash), apiVersion.slice(slash + 1)];
}

/** Validators of custom resources: "group/version/Kind" -> an ajv function over the CRD's openAPIV3Schema. */
async function customValidators(crdFiles) {
  const validators = new Map();
  if (crdFiles.length === 0) return validators;
  const { default: Ajv } = await import("ajv");
  // The structural-schema extensions (x-kubernetes-*) are not JSON Schema keywords: let ajv ignore them.
  const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
  for (const file of crdFiles) {
    for (const { object } of documents(file)) {
      if (object?.kind !== "CustomResourceDefinition") continue;
      for (const v of object.spec?.versions ?? []) {
        const schema = v.schema?.openAPIV3Schema;
        if (schema) validators.set(`${object.spec.group}/${v.name}/${object.spec.names.kind}`, ajv.compile(schema));
      }
    }
  }
  return validators;
}

/** The kubernetes-models class for an apiVersion and kind, or null when the package has none. */
async function modelOf(apiVersion, kind) {
  const [group, version] = splitApiVersion(apiVersion);
  const path = group === "" ? version : `${group}/${version}`;
  if (!/^[a-z0-9.-]+(\/[a-z0-9]+)?$/.test(path) || !/^[A-Za-z0-9]+$/.test(kind)) return null;
  try {
    const module = await import(`kubernetes-models/${path}/${kind}`);
    return module[kind] ?? null;
  } catch (e) {
    if (e?.code === "ERR_MODULE_NOT_FOUND" || e?.code === "ERR_PACKAGE_PATH_NOT_EXPORTED") return null;
    throw e;
  }
}

function describe(object) {
  const meta = object.metadata ?? {};
  const name = meta.namespace ? `${meta.namespace}/${meta.name}` : meta.name;
  return `${object.kind} ${name ?? "(no name)"}`;
}

/** One line per ajv error: the field path, the message, and what the rule asked for. */
function formatErrors(errors) {
  return (errors ?? []).map((e) => {
    const where = e.instancePath === "" ? "/" : e.instancePath;
    const params = e.params && Object.keys(e.params).length > 0 ? ` ${JSON.stringify(e.params)}` : "";
    return `${where}: ${e.message}${params}`;
  });
}

async function check(object, custom) {
  if (typeof object !== "object" || Array.isArray(object)) return ["/: a document must be a mapping"];
  if (typeof object.apiVersion !== "string" || typeof object.kind !== "string") return ["/: apiVersion and kind are required strings"];
  const Model = await modelOf(object.apiVersion, object.kind);
  if (Model) {
    try {
      new Model(object).validate();
      return [];
    } catch (e) {
      if (Array.isArray(e?.errors)) return formatErrors(e.errors);
      throw e;
    }
  }
  const [group, version] = splitApiVersion(object.apiVersion);
  const validate = custom.get(`${group}/${version}/${object.kind}`);
  if (validate) return validate(object) ? [] : formatErrors(validate.errors);
  return [`/: no schema for apiVersion ${object.apiVersion} kind ${object.kind} (not a Kubernetes kind; a custom resource needs --crd)`];
}

async function main() {
  const { crds, files } = parseArgs(process.argv.slice(2));
  const custom = await customValidators(crds);
  let objects = 0;
  let failures = 0;
  for (const file of files) {
    for (const doc of documents(file)) {
      const where = `${file === "-" ? "<stdin>" : file}: document ${doc.index + 1}`;
      if (doc.error) {
        console.log(`${where}: not YAML: ${doc.error}`);
        failures++;
        continue;
      }
      objects++;
      for (const line of await check(doc.object, custom)) {
        console.log(`${where} (${describe(doc.object)}): ${line}`);
        failures++;
      }
    }
  }
  console.log(`schema-check: ${objects} objects in ${files.length} files, ${failures} errors`);
  return failures === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof UsageError ? `${e.message}\n${usage}` : `schema-check: ${e?.stack ?? e}`);
    process.exit(2);
  },
);
