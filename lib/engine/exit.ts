// Exit codes of every command but `status` (README: Exit codes). A module of their own: the
// command line needs them before it loads any command.

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
