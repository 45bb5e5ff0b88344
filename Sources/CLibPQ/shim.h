// CLibPQ: libpq, PostgreSQL's C client library (Debian keeps the header under postgresql/).
#include <libpq-fe.h>
