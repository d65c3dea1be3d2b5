/* common.h: everything common/ offers, in one include. */
#ifndef RACKRUN_COMMON_H
#define RACKRUN_COMMON_H
#include "config.h"
#include "grow.h"
#include "log.h"
#include "units.h"
#endif
