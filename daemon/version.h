/* version.h: the exporter's version, shown by --version and fpu_exporter_build_info. */
#ifndef VERSION_H
#define VERSION_H

#define FPU_EXPORTER_VERSION "0.1.0"

#endif /* VERSION_H */
