import js from '@eslint/js'
import reactHooks from 'eslint-plugin-react-hooks'
import globals from 'globals'
import tseslint from 'typescript-eslint'

const noElectron = {
  'no-restricted-imports': [
    'error',
    {
      paths: [{ name: 'electron', message: 'src/core and src/shared never import electron (DESIGN.md rule 2): put Electron code in src/main.' }],
      patterns: [{ group: ['electron/*', '**/main/*', '**/preload/index*', '**/renderer/*'], message: 'core and shared depend on no face.' }],
    },
  ],
  'no-restricted-syntax': [
    'error',
    {
      selector: "CallExpression[callee.name='require'][arguments.0.value='electron']",
      message: 'src/core and src/shared never require electron (DESIGN.md rule 2).',
    },
  ],
}

export default tseslint.config(
  { ignores: ['out/**', 'dist/**', 'packages/*/dist/**', 'node_modules/**', 'test-results/**', 'bench/results/**', 'test/fixtures/next-app/.next/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Secrets never reach a shell (DESIGN.md rule 6): spawn with arguments, never exec a command line.
      'no-restricted-properties': [
        'error',
        { object: 'child_process', property: 'exec', message: 'Use spawn/execFile with an argument array (DESIGN.md rule 6).' },
        { object: 'child_process', property: 'execSync', message: 'Use spawnSync with an argument array (DESIGN.md rule 6).' },
      ],
    },
  },
  { files: ['src/core/**/*.ts', 'src/shared/**/*.ts'], rules: noElectron },
  {
    files: ['src/renderer/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    plugins: { 'react-hooks': reactHooks },
    rules: { 'react-hooks/rules-of-hooks': 'error', 'react-hooks/exhaustive-deps': 'warn' },
  },
  { files: ['**/*.cjs'], rules: { '@typescript-eslint/no-require-imports': 'off' } },
)
