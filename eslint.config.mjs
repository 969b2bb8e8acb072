// eslint for the widget (widget/): `npx eslint widget/` in `make lint`.

import js from '@eslint/js';
import globals from 'globals';

export default [
  { ignores: ['widget_server/static/**', 'node_modules/**', '.venv*/**'] },
  js.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: 'module' },
    rules: {
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-var': 'error',
      'prefer-const': 'error',
      'no-shadow': 'error',
      'no-implicit-coercion': ['error', { allow: ['!!', '+'] }],
      'no-eval': 'error',
      'no-implied-eval': 'error',
      'no-new-func': 'error',
      'no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // the widget runs in other people's pages
    files: ['widget/src/**/*.js'],
    languageOptions: { globals: globals.browser },
    rules: {
      // agent and visitor text must never become markup: build nodes and set textContent
      'no-restricted-properties': [
        'error',
        { property: 'innerHTML', message: 'Use textContent or DOM nodes; the template (template.js) is the one exception.' },
        { property: 'outerHTML', message: 'Use textContent or DOM nodes.' },
        { property: 'insertAdjacentHTML', message: 'Use textContent or DOM nodes.' },
      ],
    },
  },
  {
    files: ['widget/*.mjs', 'eslint.config.mjs'],
    languageOptions: { globals: globals.node },
  },
];
