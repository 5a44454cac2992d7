/**
 * A fenced code block of a Markdown file: its language (the first word of the info string, lower case; '' when
 * there is none), what kind of code that is, where it starts and ends (1-based lines of the fences) and its code
 * with the fence's indentation removed.
 */
export interface Fence {
  readonly kind: 'typescript' | 'javascript' | 'other' | 'unclosed'
  readonly language: string
  readonly line: number
  readonly end: number
  readonly code: string
}

const TYPESCRIPT = new Set(['ts', 'typescript', 'tsx'])
const JAVASCRIPT = new Set(['js', 'javascript', 'jsx', 'mjs', 'cjs'])

/** A line that opens or closes a fence: indentation, three or more backticks or tildes, the rest. */
export const FENCE_LINE = /^(\s*)(`{3,}|~{3,})(.*)$/

/**
 * The fenced code blocks of a Markdown text, in order (CommonMark rules: a fence closes with a run of the same
 * character at least as long, with nothing after it; indented fences, as in list items, count too).
 */
export function fencesOf(markdown: string): Fence[] {
  const lines = markdown.split('\n')
  const fences: Fence[] = []
  for (let index = 0; index < lines.length; index++) {
    const open = FENCE_LINE.exec(lines[index] ?? '')
    if (open === null) continue
    const [, indent = '', marker = '', info = ''] = open
    if (marker.startsWith('`') && info.includes('`')) continue
    const language = (info.trim().split(/\s+/)[0] ?? '').toLowerCase()
    const close = lines.findIndex((line, at) => at > index && isCloser(line, marker))
    if (close < 0) {
      fences.push({ kind: 'unclosed', language, line: index + 1, end: lines.length, code: '' })
      break
    }
    const code = lines
      .slice(index + 1, close)
      .map((line) => dedent(line, indent.length))
      .join('\n')
    const kind = TYPESCRIPT.has(language) ? 'typescript' : JAVASCRIPT.has(language) ? 'javascript' : 'other'
    fences.push({ kind, language, line: index + 1, end: close + 1, code })
    index = close
  }
  return fences
}

function isCloser(line: string, marker: string): boolean {
  const close = FENCE_LINE.exec(line)
  if (close === null) return false
  const [, , run = '', rest = ''] = close
  return run[0] === marker[0] && run.length >= marker.length && rest.trim() === ''
}

function dedent(line: string, width: number): string {
  let cut = 0
  while (cut < width && (line[cut] === ' ' || line[cut] === '\t')) cut++
  return line.slice(cut)
}
