// @ts-check
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'coverage/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    // Import boundary: clients talk to the server through contract/, never to adapters.
    files: ['cli/**/*.ts', 'daemon/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/core/adapters/**', '**/core/adapters'],
              message: 'cli/ and daemon/ may not import core/adapters (use contract/ and core/domain).',
            },
            {
              group: ['**/server/**', '**/worker/**'],
              message: 'cli/ and daemon/ may not import server/ or worker/.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['core/domain/**/*.ts', 'core/ports/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/adapters/**'], message: 'domain and ports may not import adapters.' }] },
      ],
    },
  },
);
