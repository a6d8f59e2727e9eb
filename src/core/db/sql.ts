/**
 * Quoting SQL identifiers: the one place backup, restore and the rest build names into statements. Values
 * always travel as bound parameters; only names (which parameters cannot carry) are quoted here.
 */

/** A quoted identifier: "name", with any double quote doubled. */
export const qi = (s: string): string => `"${s.replace(/"/g, '""')}"`

/** A schema-qualified quoted name: "schema"."name". */
export const qname = (schema: string, name: string): string => `${qi(schema)}.${qi(name)}`
