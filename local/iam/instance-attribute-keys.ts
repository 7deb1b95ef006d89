/**
 * The `ec2:Attribute` condition keys of a ModifyInstanceAttribute request.
 *
 * EC2 User Guide, "Policy structure", "ec2:Attribute condition key": "The condition key supports
 * only properties that are of a primitive data type, such as a string or integer, or complex
 * objects that have only a Value property, such as the Description object of the
 * ModifyImageAttribute API action." Its examples: `ec2:Attribute/Description` is the value the
 * request sets (`Description.Value`), and `ec2:Attribute` is the request's primitive `Attribute`
 * property. The Service Authorization Reference lists both keys on the `instance` resource of
 * ModifyInstanceAttribute.
 *
 * So each property of the request that is a primitive, or an object with only `Value`, gives
 * `ec2:Attribute/<property>` with that value (`Attribute` itself gives `ec2:Attribute`), and a
 * list (`BlockDeviceMappings`, `Groups`) gives none. `InstanceId` names the resource and `DryRun`
 * only asks for the check: neither is an attribute. A blob (`UserData.Value`) is its base64 text,
 * as the Query API carries it. Booleans are `true`/`false` (the reference types the keys String).
 * Where the guide leaves the form open (the `Attribute`/`Value` form of the request), the keys
 * are what its rule gives: `ec2:Attribute` and `ec2:Attribute/Value`.
 */

const NOT_ATTRIBUTES = new Set(['InstanceId', 'DryRun']);

const asText = (value: unknown): string | undefined => {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
    return String(value);
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return undefined;
};

/** The value a property sets, when the key supports it: a primitive, or an object of only `Value`. */
const settableValue = (value: unknown): string | undefined => {
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return asText(value);
  if (Array.isArray(value)) return undefined;
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === 'Value' ? asText((value as { Value: unknown }).Value) : undefined;
};

export const instanceAttributeKeys = (input: Readonly<Record<string, unknown>>): Record<string, string> => {
  const context: Record<string, string> = {};
  for (const [property, value] of Object.entries(input)) {
    if (NOT_ATTRIBUTES.has(property) || value === undefined) continue;
    const text = settableValue(value);
    if (text === undefined) continue;
    context[property === 'Attribute' ? 'ec2:Attribute' : `ec2:Attribute/${property}`] = text;
  }
  return context;
};
